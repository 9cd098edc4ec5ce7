"""Shared fixtures: PostgreSQL access (mandatory under CI=true) and langgraph's stores."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.sqlite import SqliteStore

POSTGRES_ENV = "DEEPMEMORY_TEST_POSTGRES_URL"


NO_SERVER = f"set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """Every skip for want of a PostgreSQL server reported at one place, so ``-ra``
    sums them up in one line instead of one line per test."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and NO_SERVER in report.longrepr[2]:
        report.longrepr = (__file__, _SKIP_LINE, f"Skipped: {NO_SERVER}")


def postgres_url() -> str:
    """The test server's URL; skip without one locally, fail without one in CI."""
    url = os.environ.get(POSTGRES_ENV)
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if not url:
        if in_ci:
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: PostgreSQL tests are mandatory.")
        pytest.skip(NO_SERVER)
    return url


@pytest.fixture
def langgraph_sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """langgraph's own SqliteStore on a real file."""
    conn = sqlite3.connect(tmp_path / "langgraph.db", check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn)
    store.setup()
    yield store
    conn.close()


@pytest.fixture(scope="session")
def postgres_store() -> Iterator[Any]:
    """Our PostgresStore on the test server (one per session; tests use unique namespaces)."""
    from deepmemory.stores import PostgresStore

    store = PostgresStore(connection_string=postgres_url())
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _fresh_openai_http_clients() -> Iterator[None]:
    """langchain-openai caches one async HTTP client per base URL for the whole process.

    A client made on one test's event loop breaks on the next loop ("Event loop is
    closed"), so each test starts without cached clients.
    """
    yield
    try:
        from langchain_openai.chat_models import _client_utils
    except ImportError:
        return
    for name in ("_cached_async_httpx_client", "_cached_sync_httpx_client"):
        cached = getattr(_client_utils, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()


_SKIP_LINE = next(  # where postgres_url skips: the one place every such skip is shown at
    n for n, line in enumerate(Path(__file__).read_text().splitlines()) if "skip(NO_SERVER)" in line
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): a server that is down."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
