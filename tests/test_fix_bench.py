"""The FIX benchmark still runs, on a tiny size, and checks its own answers. Its figures are
printed, never judged here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_fix_bench_drives_both_faces_and_every_answer_is_the_expected_one() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fix_bench.py"), "--orders", "8", "--sessions", "1", "2"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for sessions in ("1 session ", "2 sessions"):
        assert re.search(rf"{sessions}: FIX/REST p50 = \d+\.\d\dx", done.stdout), done.stdout
    assert re.search(r"floor: Engine\.create .* p50 \d+\.\d{3} ms = \d+\.\d\dx REST's p50", done.stdout), done.stdout
    assert "ERRORS" not in done.stdout
