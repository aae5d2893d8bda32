"""Tests of jvm-crash-class.py: python3 -m unittest discover -s scripts/bench/lib -p 'test_*.py'

The fixture testdata/hs_err-torn-entry.txt is the crash report (its frame, registers and instruction dump) of a
real guest crash: 2026-11-22, `scripts/bench/vduse-null-vs-qsd`, 2-queue adaptive export, thread vduse4j-queue-1.
The other cases are edits of it, each changing the one fact the classification rests on.
"""
import importlib.util
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("jvm_crash_class", os.path.join(HERE, "jvm-crash-class.py"))
jcc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jcc)

with open(os.path.join(HERE, "testdata", "hs_err-torn-entry.txt")) as f:
    REAL = f.read()

FRAME_PC = "@ 0x00007fa510663e82 [0x00007fa510663e80+0x0000000000000002]"
PATCHED_ENTRY = "00 00 00 00 00 00 00 00 00 00 00 00 00 00 e9 db\n=>0x00007fa510663e82:   83 3a 07"


class JvmCrashClassTest(unittest.TestCase):
    def test_the_real_guest_crash_is_the_torn_entry_patch(self):
        known, line = jcc.classify(REAL)
        self.assertTrue(known, line)
        self.assertIn("java.lang.Math.min", line)
        self.assertIn("entry +2", line)
        self.assertIn("e9 db 83 3a 07", line)

    def test_a_fault_in_the_method_body_is_other(self):
        body = REAL.replace(FRAME_PC, "@ 0x00007fa510663e8a [0x00007fa510663e80+0x000000000000000a]")
        known, line = jcc.classify(body)
        self.assertFalse(known, line)
        self.assertTrue(line.startswith("other:"))

    def test_a_fault_at_an_entry_that_was_not_patched_is_other(self):
        # the original stack-bang instruction (mov %eax,-0x14000(%rsp)) still at the entry: e.g. a real stack overflow
        intact = REAL.replace(PATCHED_ENTRY, "00 00 00 00 00 00 00 00 00 00 00 00 00 00 89 84\n"
                                             "=>0x00007fa510663e82:   24 00 c0")
        self.assertNotEqual(intact, REAL)
        known, line = jcc.classify(intact)
        self.assertFalse(known, line)

    def test_the_jmp_self_stage_of_the_patch_counts(self):
        spinning = REAL.replace(PATCHED_ENTRY, "00 00 00 00 00 00 00 00 00 00 00 00 00 00 eb fe\n"
                                               "=>0x00007fa510663e82:   eb fe 07")
        known, line = jcc.classify(spinning)
        self.assertTrue(known, line)

    def test_a_report_without_an_instruction_dump_is_other(self):
        cut = REAL.split("Instructions: ")[0]
        known, line = jcc.classify(cut)
        self.assertFalse(known, line)
        self.assertIn("no instruction dump", line)

    def test_a_native_frame_is_other(self):
        native = REAL.replace("# J 1486 c1 java.lang.Math.min(JJ)J", "# C  [libc.so.6+0x9a3b2]  memcpy")
        known, line = jcc.classify(native)
        self.assertFalse(known, line)
        self.assertIn("no compiled Java frame", line)


if __name__ == "__main__":
    unittest.main()
