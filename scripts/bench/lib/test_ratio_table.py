"""Tests of ratio-table.py: python3 -m unittest discover -s scripts/bench/lib -p 'test_*.py'

The rows are from a real guest log: `BENCH_RUNTIME=2 scripts/bench/vduse-file-vs-qsd` on Linux 6.12.118,
2026-12-03, where qemu-storage-daemon's O_DIRECT export failed every request (its direct group).
"""
import unittest

import logscript
BUFFERED = """BENCH peer=qemu-storage-daemon group=buffered rw=randread qd=1 jobs=1 iops=555 p50_us=1171.5 p99_us=7569.4
BENCH peer=vduse4j-pread group=buffered rw=randread qd=1 jobs=1 iops=1023 p50_us=659.5 p99_us=5603.3
"""
DIRECT = "BENCH peer=vduse4j-io_uring-direct group=direct rw=randread qd=1 jobs=1 iops=856 p50_us=741.4 p99_us=6062.1\n"
SKIP = ("BENCH-SKIP peer=qemu-storage-daemon group=direct reason=its O_DIRECT reads into the VDUSE bounce mapping "
        "fail with EIO on Linux 6.12.118\n")


def table(log):
    return logscript.run("ratio-table.py", log)


class RatioTableTest(unittest.TestCase):
    def test_ratios_against_the_peer_of_the_same_group(self):
        rc, out = table(BUFFERED)
        self.assertEqual(rc, 0, out)
        self.assertIn("| randread QD1 | buffered | vduse4j-pread | 1023 | 1.84x | 660 | 5603 |", out)

    def test_a_group_without_its_peer_row_fails(self):
        rc, out = table(BUFFERED + DIRECT)
        self.assertEqual(rc, 1, out)
        self.assertIn("| randread QD1 | direct | vduse4j-io_uring-direct | 856 | n/a |", out)

    def test_a_skipped_peer_group_passes_and_says_why(self):
        rc, out = table(BUFFERED + SKIP + DIRECT)
        self.assertEqual(rc, 0, out)
        self.assertIn("| direct | vduse4j-io_uring-direct | 856 | n/a |", out)
        self.assertIn("qemu-storage-daemon rows of group direct skipped: its O_DIRECT reads into the VDUSE bounce "
                      "mapping fail with EIO on Linux 6.12.118", out)

    def test_a_skip_does_not_excuse_an_error(self):
        rc, _ = table(BUFFERED + SKIP + DIRECT + "BENCH-ERROR peer=vduse4j-io_uring-direct group=direct rw=randread qd=32 jobs=1\n")
        self.assertEqual(rc, 1)

    def test_a_log_without_rows_fails(self):
        rc, out = table("BENCH-INFO nothing ran\n")
        self.assertEqual(rc, 1, out)


def boot(k, peer_iops, ours_iops):
    return (f"BENCH-BOOT {k}\n"
            f"BENCH peer=qemu-storage-daemon group=default rw=randread qd=32 jobs=1 iops={peer_iops} p50_us=100.0 p99_us=900.0\n"
            f"BENCH peer=vduse4j-adaptive group=default rw=randread qd=32 jobs=1 iops={ours_iops} p50_us=50.0 p99_us=800.0\n")


class RepeatedBootsTest(unittest.TestCase):
    """BENCH_BOOTS=N logs: per-boot ratios, their median and spread, ranked only without overlap of 1.00x."""

    def test_median_and_spread_of_the_per_boot_ratios(self):
        # ratios 2.0, 0.5, 1.5: the peer's IOPS differ per boot, so the ratio is taken within each boot
        rc, out = table(boot(1, 1000, 2000) + boot(2, 4000, 2000) + boot(3, 2000, 3000))
        self.assertEqual(rc, 0, out)
        self.assertIn("| randread QD32 | default | vduse4j-adaptive | 3 | 2000 | 1.50x | 0.50-2.00x | 50 | 800 |"
                      " not ranked (overlaps 1.00x) |", out)
        self.assertIn("| randread QD32 | default | qemu-storage-daemon | 3 | 2000 |  |  | 100 | 900 | (the peer) |", out)

    def test_a_spread_above_one_is_ranked_above_the_peer(self):
        rc, out = table(boot(1, 1000, 1200) + boot(2, 1000, 3000) + boot(3, 500, 1000))
        self.assertEqual(rc, 0, out)
        self.assertIn("| 1.20-3.00x | 50 | 800 | above the peer |", out)

    def test_a_spread_below_one_is_ranked_below_the_peer(self):
        rc, out = table(boot(1, 1000, 900) + boot(2, 1000, 500))
        self.assertIn("| 0.50-0.90x | 50 | 800 | below the peer |", out)

    def test_a_boot_without_the_peer_row_is_left_out_of_the_ratio(self):
        log = boot(1, 1000, 2000) + boot(2, 1000, 3000).replace(
            "BENCH peer=qemu-storage-daemon group=default rw=randread qd=32 jobs=1 iops=1000 p50_us=100.0 p99_us=900.0\n", "")
        rc, out = table(log)
        self.assertIn("| vduse4j-adaptive | 2 | 2500 | 2.00x | 2.00-2.00x |", out)
        self.assertIn("above the peer, 1 of 2 boots |", out)


if __name__ == "__main__":
    unittest.main()
