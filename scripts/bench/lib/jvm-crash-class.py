#!/usr/bin/env python3
"""Classifies a HotSpot crash report (hs_err_<pid>.log) from a guest benchmark run.

    jvm-crash-class.py HS_ERR_FILE...

Prints one line per report and exits 0 when every report is the known QEMU TCG crash, 1 otherwise:

  tcg-torn-entry-patch: the faulting pc lies inside the 5-byte jump that HotSpot writes over the verified entry of a
  compiled method when it makes that method not entrant (NativeJump::patch_verified_entry: first "jmp self; jmp
  self" as one 4-byte store, then the last byte, then the first four bytes). On x86 hardware another CPU fetching
  that entry sees either the old or the new 4 bytes; QEMU TCG translates guest code a byte at a time while the other
  vCPU writes it, so its translation can mix old and new bytes and execute the tail of the jump as an instruction.
  docs/benchmarks.md ("The guest JVM crash") has the evidence.

Anything else (a fault elsewhere in compiled code, in a native frame, a report without an instruction dump) is
"other": it may be ours, and the benchmark must fail on it.
"""
import re
import sys

FRAME = re.compile(r"^# J \d+ (c1|c2)\S* (\S+).* @ 0x([0-9a-f]+) \[0x([0-9a-f]+)\+0x([0-9a-f]+)\]")
DUMP = re.compile(r"^(?:=>)?\s*0x([0-9a-f]+):\s+((?:[0-9a-f]{2}\s*)+)$")
JMP_REL32, JMP_REL8, SELF = 0xE9, 0xEB, 0xFE
ENTRY_ALIGNMENT = 32  # -XX:CodeEntryAlignment on x86_64: compiled (verified) entries start on this boundary


def classify(text):
    lines = text.splitlines()
    frame = next((m for m in map(FRAME.match, lines) if m), None)
    if frame is None:
        return False, "other: no compiled Java frame at the fault"
    compiler, method = frame.group(1), frame.group(2)
    pc, start = int(frame.group(3), 16), int(frame.group(4), 16)

    code = {}
    in_dump = False
    for line in lines:
        if line.startswith("Instructions: "):
            in_dump = True
            continue
        if in_dump:
            m = DUMP.match(line)
            if not m:
                if code:
                    break
                continue
            addr = int(m.group(1), 16)
            for i, b in enumerate(m.group(2).split()):
                code[addr + i] = int(b, 16)
    if not code:
        return False, "other: %s %s fault at 0x%x, no instruction dump" % (compiler, method, pc)

    entry = pc - pc % ENTRY_ALIGNMENT
    offset = pc - entry
    first = code.get(entry)
    patched = first == JMP_REL32 or (first == JMP_REL8 and code.get(entry + 1) == SELF)
    if entry >= start and offset < 5 and patched:
        return True, ("tcg-torn-entry-patch: %s %s faulted at its entry +%d, inside the jump HotSpot patched over "
                      "that entry (bytes %s)" % (compiler, method, offset,
                                                 " ".join("%02x" % code.get(entry + i, 0) for i in range(5))))
    return False, "other: %s %s fault at 0x%x (method +0x%x), not inside a patched entry" % (
        compiler, method, pc, pc - start)


def main():
    if len(sys.argv) < 2:
        print("usage: jvm-crash-class.py HS_ERR_FILE...", file=sys.stderr)
        return 2
    all_known = True
    for path in sys.argv[1:]:
        with open(path, errors="replace") as f:
            known, line = classify(f.read())
        print(line)
        all_known = all_known and known
    return 0 if all_known else 1


if __name__ == "__main__":
    sys.exit(main())
