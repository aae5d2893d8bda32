"""Tests of ratio-table.py: python3 -m unittest discover -s scripts/bench/lib -p 'test_*.py'

The rows are from a real guest log: `BENCH_RUNTIME=2 scripts/bench/vduse-file-vs-qsd` on Linux 6.12.118,
2026-12-03, where qemu-storage-daemon's O_DIRECT export failed every request (its direct group).
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUFFERED = """BENCH peer=qemu-storage-daemon group=buffered rw=randread qd=1 jobs=1 iops=555 p50_us=1171.5 p99_us=7569.4
BENCH peer=vduse4j-pread group=buffered rw=randread qd=1 jobs=1 iops=1023 p50_us=659.5 p99_us=5603.3
"""
DIRECT = "BENCH peer=vduse4j-io_uring-direct group=direct rw=randread qd=1 jobs=1 iops=856 p50_us=741.4 p99_us=6062.1\n"
SKIP = ("BENCH-SKIP peer=qemu-storage-daemon group=direct reason=its O_DIRECT reads into the VDUSE bounce mapping "
        "fail with EIO on Linux 6.12.118\n")


def table(log):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(log)
    try:
        r = subprocess.run([sys.executable, os.path.join(HERE, "ratio-table.py"), f.name], capture_output=True, text=True)
        return r.returncode, r.stdout
    finally:
        os.unlink(f.name)


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


if __name__ == "__main__":
    unittest.main()
