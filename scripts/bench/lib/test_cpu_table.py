"""Tests of cpu-table.py: python3 -m unittest discover -s scripts/bench/lib -p 'test_*.py'"""
import unittest

import logscript


def boot(n, qsd_ticks, ours_ticks, ours_iops=398):
    return f"""BENCH-BOOT {n}
BENCH peer=qemu-storage-daemon group=max rw=randread qd=1 jobs=1 iops=4000 p50_us=200.0 p99_us=600.0
BENCH-CPU peer=qemu-storage-daemon qd=1 load=10 rate=400 max=4000 ticks={qsd_ticks} hz=100 seconds=12
BENCH peer=qemu-storage-daemon group=load-10 rw=randread qd=1 jobs=1 iops=400 p50_us=250.0 p99_us=700.0
BENCH-CPU peer=vduse4j-default qd=1 load=10 rate=400 max=4000 ticks={ours_ticks} hz=100 seconds=12
BENCH peer=vduse4j-default group=load-10 rw=randread qd=1 jobs=1 iops={ours_iops} p50_us=150.0 p99_us=500.0
"""


def table(log):
    return logscript.run("cpu-table.py", log)


def row(out, peer):
    return next(line for line in out.splitlines() if f"| {peer} |" in line).split(" | ")


class CpuTableTest(unittest.TestCase):
    def test_cpu_per_request_and_the_ratio_to_the_peer_of_the_same_boot(self):
        rc, out = table(boot(1, 10, 40) + "BENCH-DONE\n")
        self.assertEqual(0, rc, out)
        qsd, ours = row(out, "qemu-storage-daemon"), row(out, "vduse4j-default")
        self.assertEqual("20.8", qsd[5])   # 0.10 s over 400 IOPS x 12 s: 20.8 us per request
        self.assertEqual("83.8", ours[5])  # 0.40 s over 398 x 12
        self.assertEqual("4.02x", ours[6])
        self.assertEqual("100 %", ours[9].rstrip(" |"))
        self.assertIn("maximum at QD1: 4000 IOPS", out)

    def test_several_boots_give_the_median_ratio_and_its_spread(self):
        rc, out = table(boot(1, 10, 10, 400) + boot(2, 10, 20, 400) + boot(3, 20, 10, 400))
        self.assertEqual(0, rc, out)
        ours = row(out, "vduse4j-default")
        self.assertEqual("3", ours[4])
        self.assertEqual("1.00x [0.50x-2.00x]", ours[6])

    def test_a_row_without_its_peer_or_an_error_fails(self):
        no_peer = "\n".join(l for l in boot(1, 10, 40).splitlines() if "qemu-storage-daemon qd=1 load" not in l
                            and "group=load-10 rw=randread qd=1 jobs=1 iops=400" not in l)
        rc, out = table(no_peer + "\n")
        self.assertEqual(1, rc, out)
        rc, out = table(boot(1, 10, 40) + "BENCH-ERROR peer=vduse4j-default group=load-10 rw=randread qd=1 jobs=1\n")
        self.assertEqual(1, rc, out)
        rc, out = table("BENCH-DONE\n")
        self.assertEqual(1, rc, out)


if __name__ == "__main__":
    unittest.main()
