#!/usr/bin/env python3
"""Markdown table of the "BENCH ..." lines of a guest benchmark log (see lib/vduse-guest.sh), each row with its
ratio to the qemu-storage-daemon row of the same group, rw, queue depth and jobs. Exit 1 if the log has no rows,
if any group lacks its qemu-storage-daemon row or a row reported BENCH-ERROR; a group whose peer rows the guest
skipped with a reason ("BENCH-SKIP peer=qemu-storage-daemon group=G reason=...") has no ratios, and the reason is
printed under the table.

A log of several boots (lib/run-guest-bench with BENCH_BOOTS=N: each boot's lines after a "BENCH-BOOT K" line)
gives one row per configuration instead: the median over the boots of its IOPS and of its ratio to the peer of the
same boot, the ratio's spread (lowest-highest), the median p50/p99, and a verdict that ranks the row against the
peer only where the whole spread lies on one side of 1.00x (issue 18, item 5: boots differ more than peers)."""
import re
import statistics
import sys

PEER = "qemu-storage-daemon"
BENCH = re.compile(r"BENCH peer=(\S+) group=(\S+) rw=(\S+) qd=(\d+) jobs=(\d+) iops=(\d+) p50_us=([\d.]+) p99_us=([\d.]+)")
rows, order, errors, skipped, boot, boots = {}, [], 0, {}, 0, []
for line in open(sys.argv[1], errors="replace"):
    b = re.match(r"BENCH-BOOT (\d+)\s*$", line)
    if b:
        boot = int(b[1])
        boots.append(boot)
        continue
    if line.startswith("BENCH-ERROR"):
        errors += 1
    skip = re.match(r"BENCH-SKIP peer=(\S+) group=(\S+) reason=(.*)", line)
    if skip and skip[1] == PEER:
        skipped[skip[2]] = skip[3].strip()
    m = BENCH.match(line)
    if not m:
        continue
    key = (m[2], m[3], int(m[4]), int(m[5]))
    if key not in order:
        order.append(key)
    rows.setdefault(key, []).append((m[1], int(m[6]), float(m[7]), float(m[8]), boot))

ok = errors == 0 and bool(rows)


def label(key):
    group, rw, qd, jobs = key
    return f"{rw} QD{qd}" + (f" x {jobs} queues" if jobs > 1 else "")


if len(boots) <= 1:
    print("| fio 4k | group | peer | IOPS | vs qsd | p50 us | p99 us |")
    print("|---|---|---|---|---|---|---|")
    for key in order:
        runs = sorted(rows[key], key=lambda r: not r[0].startswith(PEER))
        base = next((r for r in runs if r[0].startswith(PEER)), None)
        ok = ok and (base is not None or key[0] in skipped)
        for peer, iops, p50, p99, _ in runs:
            ratio = f"{iops / base[1]:.2f}x" if base and base[1] else "n/a"
            print(f"| {label(key)} | {key[0]} | {peer} | {iops} | {ratio} | {p50:.0f} | {p99:.0f} |")
else:
    print(f"{len(boots)} boots; median over the boots, spread lowest-highest; ranked only where the spread of the"
          " ratio lies on one side of 1.00x")
    print()
    print("| fio 4k | group | peer | boots | IOPS | vs qsd | spread | p50 us | p99 us | ranked |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key in order:
        peers = []
        for r in rows[key]:
            if r[0] not in peers:
                peers.append(r[0])
        peers.sort(key=lambda p: not p.startswith(PEER))
        base = {r[4]: r[1] for r in rows[key] if r[0].startswith(PEER)}
        ok = ok and (bool(base) or key[0] in skipped)
        for peer in peers:
            runs = [r for r in rows[key] if r[0] == peer]
            iops = statistics.median(r[1] for r in runs)
            p50 = statistics.median(r[2] for r in runs)
            p99 = statistics.median(r[3] for r in runs)
            ratios = [r[1] / base[r[4]] for r in runs if base.get(r[4])]
            if peer.startswith(PEER):
                ratio, spread, verdict = "", "", "(the peer)"
            elif not ratios:
                ratio, spread, verdict = "n/a", "", "no peer row"
            else:
                lo, hi = min(ratios), max(ratios)
                ratio, spread = f"{statistics.median(ratios):.2f}x", f"{lo:.2f}-{hi:.2f}x"
                verdict = "above the peer" if lo > 1 else "below the peer" if hi < 1 else "not ranked (overlaps 1.00x)"
                if len(ratios) < len(boots):
                    verdict += f", {len(ratios)} of {len(boots)} boots"
            print(f"| {label(key)} | {key[0]} | {peer} | {len(runs)} | {iops:.0f} | {ratio} | {spread} | {p50:.0f} |"
                  f" {p99:.0f} | {verdict} |")
for group, reason in skipped.items():
    print(f"\n{PEER} rows of group {group} skipped: {reason}")
if not rows:
    print("no BENCH rows in the log")
sys.exit(0 if ok else 1)
