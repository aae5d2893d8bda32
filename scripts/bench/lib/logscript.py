"""For the tests of the log-reading scripts here (ratio-table.py, cpu-table.py): run one on a log given as text."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(script, log):
    """Runs scripts/bench/lib/SCRIPT on a temporary file holding LOG: (exit status, standard output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(log)
    try:
        r = subprocess.run([sys.executable, os.path.join(HERE, script), f.name], capture_output=True, text=True)
        return r.returncode, r.stdout
    finally:
        os.unlink(f.name)
