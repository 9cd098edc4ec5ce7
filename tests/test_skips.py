"""Without a PostgreSQL server, its tests skip with one summary line, not one per test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_postgresql_skips_sum_up_in_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DEEPMEMORY_TEST_POSTGRES_URL", "CI")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/stores/test_coalescing.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, skipped
    assert "tests/conftest.py" in skipped[0] and "DEEPMEMORY_TEST_POSTGRES_URL" in skipped[0]
