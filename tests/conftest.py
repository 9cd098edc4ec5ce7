"""Shared fixtures: PostgreSQL access (mandatory under CI=true) and langgraph's stores."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.store.sqlite import SqliteStore

POSTGRES_ENV = "DEEPMEMORY_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test server's URL; skip without one locally, fail without one in CI."""
    url = os.environ.get(POSTGRES_ENV)
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if not url:
        if in_ci:
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: PostgreSQL tests are mandatory.")
        pytest.skip(f"set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


@pytest.fixture
def langgraph_sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """langgraph's own SqliteStore on a real file."""
    conn = sqlite3.connect(tmp_path / "langgraph.db", check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn)
    store.setup()
    yield store
    conn.close()
