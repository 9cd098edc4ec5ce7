"""Crashes and concurrency: acknowledged writes survive SIGKILL; no update is ever lost."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from deepmemory.backends import StoreBackend
from tests.conftest import postgres_url
from tests.security._workers import open_store

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


def where(engine: str, tmp_path: Path) -> str:
    return str(tmp_path / "memory.db") if engine == "sqlite" else postgres_url()


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.security._workers", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_every_acknowledged_write_survives_sigkill_at_random_moments(engine, tmp_path):
    target = where(engine, tmp_path)
    rng = random.Random(7)
    for round_ in range(4):
        namespace = f"r{round_}-{uuid.uuid4().hex[:8]}"
        child = spawn("crash", target, namespace)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY", child.stderr.read()
        time.sleep(rng.uniform(0.2, 0.8))
        os.kill(child.pid, signal.SIGKILL)
        acked = child.stdout.read().split("\n")
        child.wait(timeout=30)
        writes = [int(line[2:]) for line in acked if line.startswith("W ")]
        edits = [int(line[2:]) for line in acked if line.startswith("E ")]
        assert writes and edits, "the child acknowledged nothing before it was killed"

        if engine == "sqlite":
            with sqlite3.connect(target) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store = open_store(target)
        backend = StoreBackend(store=store, namespace=("crash", namespace))
        for i in writes:
            assert backend.read(f"/w/{i}.txt").lines == [f"value {i}"]
        log = backend.read("/log.txt", limit=10**6).lines
        assert {f"e{i}" for i in edits} <= set(log) and log[-1] == "<END>"
        store.close()


def _run_workers(engine: str, tmp_path: Path, targets: list[str], per_worker: int):
    location = where(engine, tmp_path)
    namespace = uuid.uuid4().hex
    store = open_store(location)
    backend = StoreBackend(store=store, namespace=("concurrency", namespace))
    for target in set(targets):
        backend.write(target.removeprefix("/memories"), "<END>")
    workers = [
        spawn("edit", location, namespace, target, f"w{n}", str(per_worker))
        for n, target in enumerate(targets)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
    return backend, store, [line for out, _ in outputs for line in out.splitlines()]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_eight_agents_editing_one_memory_file_lose_no_update(engine, tmp_path):
    backend, store, said = _run_workers(engine, tmp_path, ["/memories/shared.txt"] * 8, 50)
    lines = backend.read("/shared.txt", limit=10**6).lines
    assert sorted(lines[:-1]) == sorted(f"w{n}-{i}" for n in range(8) for i in range(1, 51))
    assert lines[-1] == "<END>"
    # Every edit reached the model as a success, or as a clear, actionable message.
    for text in said:
        assert text.startswith("Edited ") or "changed by someone else" in text, text
    store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_eight_agents_editing_their_own_files_lose_no_update(engine, tmp_path):
    targets = [f"/memories/own-{n}.txt" for n in range(8)]
    backend, store, said = _run_workers(engine, tmp_path, targets, 50)
    for n in range(8):
        lines = backend.read(f"/own-{n}.txt", limit=10**6).lines
        assert lines == [f"w{n}-{i}" for i in range(1, 51)] + ["<END>"]
    assert all(text.startswith("Edited ") for text in said)
    store.close()


class _CommitFails:
    """A thread's SQLite connection whose next COMMIT fails (as on a full disk)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.armed = conn, True

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


def test_a_failed_commit_leaves_nothing_behind_and_the_connection_usable(tmp_path):
    from deepmemory.stores import SQLiteStore

    store = SQLiteStore(tmp_path / "memory.db")
    try:
        store.put(("d",), "kept", {"v": 1})
        held = store._local.held  # this thread's connection
        real = held.conn
        held.conn = _CommitFails(real)
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
            store.put(("d",), "lost", {"v": 2})
        assert not real.in_transaction
        store.put(("d",), "after", {"v": 3})  # the same thread, the same connection
        assert store.get(("d",), "lost") is None
        assert [store.get(("d",), k).value for k in ("kept", "after")] == [{"v": 1}, {"v": 3}]
    finally:
        store.close()


@pytest.mark.parametrize(("asked", "pragma"), [("FULL", 2), ("NORMAL", 1)])
def test_sqlite_connections_sync_as_documented(tmp_path, asked, pragma):
    """What the SIGKILL test cannot show (the OS keeps its page cache when a process
    dies): every connection the store opens, its checkpointer's included, runs in WAL
    mode with the ``synchronous`` level asked for, FULL by default, the level at which
    SQLite syncs the WAL at each commit."""
    from deepmemory.stores import SQLiteStore

    store = SQLiteStore(
        tmp_path / f"{asked}.db", **({} if asked == "FULL" else {"synchronous": asked})
    )
    try:
        store.put(("d",), "k", {"v": 1})
        for conn in (store._connection(), store.checkpointer().conn):
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == pragma
    finally:
        store.close()
