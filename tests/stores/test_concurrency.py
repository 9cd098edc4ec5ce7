"""Concurrent writers never lose an edit: threads, coroutines, separate processes; SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deepmemory.backends import StoreBackend
from deepmemory.errors import DeepMemoryError
from deepmemory.stores import SQLiteStore
from deepmemory.stores._sql import Step

WORKER = """
import sys
from deepmemory.backends import StoreBackend
from deepmemory.stores import PostgresStore, SQLiteStore

kind, target, schema, worker, count = sys.argv[1:6]
store = SQLiteStore(target) if kind == "sqlite" else PostgresStore(target, schema=schema)
backend = StoreBackend(store=store, namespace=("team",)).mounted("/memories")
print("ready", flush=True)
sys.stdin.readline()  # Every worker starts on the same signal.
# "cas": through the compare-and-swap loop (read, replace, write if the version holds);
# "in-place": the one-statement edit.
replace_all = sys.argv[6] == "cas"
for n in range(int(count)):
    result = backend.edit(
        "/memories/log.md", "<END>", f"p{worker}-{n}\\n<END>", replace_all=replace_all
    )
    if result.error:
        sys.exit(f"edit {n} failed: {result.error}")
store.close()
"""


def _appended_lines(content, workers, count):
    lines = content.split("\n")
    assert lines[-1] == "<END>"
    for w in range(workers):
        mine = [line for line in lines if line.startswith(f"p{w}-")]
        assert mine == [f"p{w}-{n}" for n in range(count)]  # All there, in order.
    return len(lines) - 1


def _backend(store):
    return StoreBackend(store=store, namespace=("team",)).mounted("/memories")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "processes", "count"), [("in-place", 2, 200), ("cas", 4, 60)], ids=["in-place", "cas"]
)
def test_processes_appending_to_one_file_lose_nothing(
    make_store, store_kind, tmp_path, path, processes, count
):
    """Separate processes append to one file. ``in-place``: each edit is one statement;
    ``cas``: each reads the file, replaces in Python and writes only if the version it
    read still holds (``replace_all`` takes that path), retrying when another process
    got there first; without that check, appends are lost."""
    store = make_store(store_kind)
    backend = _backend(store)
    assert backend.write("/memories/log.md", "<END>").error is None
    if store_kind == "sqlite":
        target, schema = str(store.path), ""
    else:
        target, schema = store.connection_string, store.schema
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), store_kind, target, schema, str(w), str(count), path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(processes)
    ]
    for proc in workers:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    for proc in workers:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in workers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    content = "\n".join(backend.read("/memories/log.md", limit=10_000).lines)
    assert _appended_lines(content, processes, count) == processes * count


def test_threads_sharing_one_store_lose_no_edit(store):
    backend = _backend(store)
    backend.write("/memories/log.md", "<END>")

    def append(worker):
        for n in range(25):
            assert backend.edit("/memories/log.md", "<END>", f"p{worker}-{n}\n<END>").error is None

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    content = "\n".join(backend.read("/memories/log.md", limit=10_000).lines)
    assert _appended_lines(content, 4, 25) == 100


def test_concurrent_coroutines_lose_no_edit(store):
    backend = _backend(store)
    backend.write("/memories/log.md", "<END>")

    async def append(worker):
        for n in range(10):
            result = await backend.aedit("/memories/log.md", "<END>", f"p{worker}-{n}\n<END>")
            assert result.error is None

    async def everyone():
        await asyncio.gather(*(append(w) for w in range(5)))

    asyncio.run(everyone())
    content = "\n".join(backend.read("/memories/log.md", limit=10_000).lines)
    assert _appended_lines(content, 5, 10) == 50


KILLED_WRITER = """
import sys
from deepmemory.backends import StoreBackend
from deepmemory.stores import SQLiteStore

backend = StoreBackend(store=SQLiteStore(sys.argv[1]), namespace=("team",))
for n in range(100000):
    backend.write(f"/notes/{n}.txt", f"note {n}")
    print(n, flush=True)
"""


@pytest.mark.slow
def test_a_write_that_returned_survives_sigkill_of_the_process(tmp_path):
    path = tmp_path / "memory.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    confirmed = -1
    while confirmed < 200:
        confirmed = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with SQLiteStore(path) as store:
        backend = StoreBackend(store=store, namespace=("team",))
        for n in range(confirmed + 1):
            assert backend.read(f"/notes/{n}.txt").lines == [f"note {n}"]
        assert store.file_get(("team",), "/notes/0.txt") is not None


def test_a_closed_store_says_so(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    store.close()
    with pytest.raises(Exception, match="closed"):
        store.get(("a",), "k")


def test_closing_waits_for_a_statement_under_way_in_another_thread(tmp_path):
    # Closing a SQLite connection while another thread runs on it can crash the process
    # (an interrupted `deepmemory run` did, its checkpoint still being written).
    store = SQLiteStore(tmp_path / "m.db")
    started, release = threading.Event(), threading.Event()

    def pause(rows):
        started.set()
        release.wait(10)
        return [("INSERT INTO t_after VALUES (1)", {})]

    store._execute([Step(("CREATE TABLE t_after (x)", {}), finish=list, write=True)])
    step = Step(("SELECT 1", {}), finish=lambda rows: "written", write=True, then=pause)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(store._execute([step])))
    worker.start()
    assert started.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # close() waits for the transaction under way
    release.set()
    worker.join(10)
    closer.join(10)
    assert done == [["written"]]
    with pytest.raises(DeepMemoryError, match="closed"):
        store.get(("a",), "k")
    with sqlite3.connect(tmp_path / "m.db") as check:
        assert check.execute("SELECT count(*) FROM t_after").fetchone() == (1,)


def test_closing_waits_for_a_checkpoint_being_written_in_another_thread(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    saver = store.checkpointer()
    inside, release = threading.Event(), threading.Event()
    done: list[object] = []

    def write() -> None:
        with saver.cursor() as cur:
            inside.set()
            release.wait(10)
            done.append(cur.execute("SELECT count(*) FROM checkpoints").fetchone())

    worker = threading.Thread(target=write)
    worker.start()
    assert inside.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()
    release.set()
    worker.join(10)
    closer.join(10)
    assert done == [(0,)]
    with pytest.raises(sqlite3.ProgrammingError):
        saver.conn.execute("SELECT 1")  # closed once the checkpoint was written
