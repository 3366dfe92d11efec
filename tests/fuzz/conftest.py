"""Fuzz tests: helpers next to them (fuzz_kit.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
