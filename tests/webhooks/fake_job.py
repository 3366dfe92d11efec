"""Stand-in for ``meltano run <job>`` in receiver tests: logs start/end lines and sleeps.

Usage: fake_job.py <job> <log> <seconds>; exits 1 (once) when ``<log>.fail`` exists.
"""

import os
import sys
import time
from pathlib import Path

job, log, seconds = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
with log.open("a") as out:
    out.write(f"start {job} {os.environ.get('HRSYNC_INTEGRATION')}\n")
time.sleep(seconds)
flag = Path(f"{log}.fail")
failed = flag.exists()
if failed:
    flag.unlink()
with log.open("a") as out:
    out.write(f"{'fail' if failed else 'end'} {job}\n")
sys.exit(1 if failed else 0)
