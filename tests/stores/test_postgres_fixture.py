"""Without a reachable PostgreSQL its tests skip locally and fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
A_POSTGRES_TEST = (
    "tests/stores/test_migrations.py::test_a_blank_postgres_schema_is_created_on_first_use"
)
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"
CASES = [
    ({}, "1 skipped"),
    ({"DEEPMEMORY_TEST_POSTGRES_URL": UNREACHABLE}, "1 skipped"),
    ({"CI": "true"}, "1 error"),
    ({"CI": "true", "DEEPMEMORY_TEST_POSTGRES_URL": UNREACHABLE}, "1 error"),
]


def _pytest(env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DEEPMEMORY_TEST_POSTGRES_URL")}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", A_POSTGRES_TEST, "-p", "no:cacheprovider", "-q"],
        cwd=ROOT,
        env=env | env_changes,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_postgres_tests_skip_locally_and_fail_in_ci_without_a_server():
    runs = [(_pytest(env), env, outcome) for env, outcome in CASES]  # In parallel: ~1 startup.
    for proc, env, outcome in runs:
        output, _ = proc.communicate(timeout=120)
        assert outcome in output, (env, output)
        assert (proc.returncode == 0) == (outcome == "1 skipped"), (env, output)
