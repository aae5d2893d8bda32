#!/usr/bin/env python3
"""Markdown table of a scripts/bench/vduse-cpu-per-request log: per depth, load and peer, the back-end's CPU
microseconds per request (its utime+stime over the fio run, ramp included, over the requests fio completed at the
rate it reached over that time), the ratio to qemu-storage-daemon's of the same boot, fio's p50/p99 and the rate
reached (IOPS over the asked rate). With several boots ("BENCH-BOOT K" lines): the median over the boots and, in
brackets, the lowest and highest. Exit 1 if the log has no rows, a row lacks its qemu-storage-daemon row, or a run
reported BENCH-ERROR."""
import re
import statistics
import sys

PEER = "qemu-storage-daemon"
CPU = re.compile(r"BENCH-CPU peer=(\S+) qd=(\d+) load=(\d+) rate=(\d+) max=(\d+) ticks=(\d+) hz=(\d+) seconds=(\d+)")
BENCH = re.compile(r"BENCH peer=(\S+) group=(\S+) rw=\S+ qd=(\d+) jobs=\d+ iops=(\d+) p50_us=([\d.]+) p99_us=([\d.]+)")


def main(path):
    runs, order, boot, errors, pending, maxima = {}, [], 0, 0, None, {}
    for line in open(path, errors="replace"):
        b = re.match(r"BENCH-BOOT (\d+)\s*$", line)
        if b:
            boot = int(b[1])
            continue
        if line.startswith("BENCH-ERROR"):
            errors += 1
            print(line.rstrip())
        c = CPU.match(line)
        if c:
            pending = c
            continue
        m = BENCH.match(line)
        if not m:
            continue
        if m[2] == "max":
            maxima.setdefault(int(m[3]), []).append(int(m[4]))
            continue
        if pending is None or pending[1] != m[1]:
            continue
        peer, qd, load, rate, _, ticks, hz, seconds = pending.groups()
        iops = int(m[4])
        key = (int(qd), int(load), peer)
        if key not in runs:
            runs[key] = {}
            order.append(key)
        cpu_us = int(ticks) / int(hz) * 1e6 / (iops * int(seconds)) if iops else float("nan")
        runs[key][boot] = (cpu_us, float(m[5]), float(m[6]), iops / int(rate), int(rate))
        pending = None
    if not runs:
        print("cpu-table: no runs in the log")
        return 1
    order.sort(key=lambda k: (k[0], k[1], k[2] != PEER, k[2]))

    def med(values, fmt):
        values = sorted(values)
        if not values:
            return ""
        text = fmt % statistics.median(values)
        return text if len(values) == 1 else text + " [" + fmt % values[0] + "-" + fmt % values[-1] + "]"

    for qd, ms in sorted(maxima.items()):
        print(f"qemu-storage-daemon maximum at QD{qd}: {med(ms, '%d')} IOPS ({len(ms)} boot(s))")
    print()
    print("| QD | load (% of qsd max) | rate IOPS | peer | boots | CPU us/request | CPU ratio (ours/qsd) | p50 us | p99 us | reached rate |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    missing = 0
    for qd, load, peer in order:
        r = runs[(qd, load, peer)]
        base = runs.get((qd, load, PEER), {})
        ratios = [r[b][0] / base[b][0] for b in r if b in base and base[b][0] > 0]
        if peer != PEER and not ratios:
            missing += 1
        rate = statistics.median([v[4] for v in r.values()])
        print(f"| {qd} | {load} | {rate:.0f} | {peer} | {len(r)} | {med([v[0] for v in r.values()], '%.1f')} | "
              f"{'' if peer == PEER else med(ratios, '%.2fx')} | {med([v[1] for v in r.values()], '%.1f')} | "
              f"{med([v[2] for v in r.values()], '%.1f')} | {med([v[3] * 100 for v in r.values()], '%.0f')} % |")
    print()
    print("(CPU: the back-end process's utime+stime over the fio process's life, its 2 s ramp included, per request"
          " at the rate reached; ratios per boot, against qemu-storage-daemon of the same boot)")
    return 1 if errors or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
