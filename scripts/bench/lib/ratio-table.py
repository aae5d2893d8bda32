#!/usr/bin/env python3
"""Markdown table of the "BENCH ..." lines of a guest benchmark log (see lib/vduse-guest.sh), each row with its
ratio to the qemu-storage-daemon row of the same group, rw, queue depth and jobs. Exit 1 if any group lacks its
qemu-storage-daemon row or a row reported BENCH-ERROR; a group whose peer rows the guest skipped with a reason
("BENCH-SKIP peer=qemu-storage-daemon group=G reason=...") has no ratios, and the reason is printed under the table."""
import re
import sys

PEER = "qemu-storage-daemon"
rows, order, errors, skipped = {}, [], 0, {}
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("BENCH-ERROR"):
        errors += 1
    skip = re.match(r"BENCH-SKIP peer=(\S+) group=(\S+) reason=(.*)", line)
    if skip and skip[1] == PEER:
        skipped[skip[2]] = skip[3].strip()
    m = re.match(r"BENCH peer=(\S+) group=(\S+) rw=(\S+) qd=(\d+) jobs=(\d+) iops=(\d+) p50_us=([\d.]+) p99_us=([\d.]+)",
                 line)
    if not m:
        continue
    key = (m[2], m[3], int(m[4]), int(m[5]))
    if key not in order:
        order.append(key)
    rows.setdefault(key, []).append((m[1], int(m[6]), float(m[7]), float(m[8])))

print("| fio 4k | group | peer | IOPS | vs qsd | p50 us | p99 us |")
print("|---|---|---|---|---|---|---|")
ok = errors == 0
for key in order:
    group, rw, qd, jobs = key
    runs = sorted(rows[key], key=lambda r: not r[0].startswith(PEER))
    base = next((r for r in runs if r[0].startswith(PEER)), None)
    ok = ok and (base is not None or group in skipped)
    label = f"{rw} QD{qd}" + (f" x {jobs} queues" if jobs > 1 else "")
    for peer, iops, p50, p99 in runs:
        ratio = f"{iops / base[1]:.2f}x" if base and base[1] else "n/a"
        print(f"| {label} | {group} | {peer} | {iops} | {ratio} | {p50:.0f} | {p99:.0f} |")
for group, reason in skipped.items():
    print(f"\n{PEER} rows of group {group} skipped: {reason}")
sys.exit(0 if ok else 1)
