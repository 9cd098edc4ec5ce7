"""Concurrent async calls run together, and nothing a caller was told is lost or shared."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from deepmemory.backends import StoreBackend
from deepmemory.backends.protocol import Expiry, StoredFile
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.stores._base import SQLStore
from deepmemory.stores._edits import apply_edits

NS = ("coalesce",)
FILES = 6
SLOTS = 40


def _checklist(k: int) -> str:
    return f"# list {k}\n" + "".join(f"slot-{s:03d}: todo\n" for s in range(SLOTS))


def _twin(store: SQLStore) -> SQLStore:
    """A second store object on the same database: another worker, its own connections."""
    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.connection_string, schema=store.schema)


def test_hundreds_of_concurrent_edits_and_reads_lose_nothing(store: SQLStore) -> None:
    backend = StoreBackend(store=store, namespace=NS)
    for k in range(FILES):
        backend.write(f"/list{k}.md", _checklist(k))
    rng = random.Random(7)
    edits = [(k, s) for k in range(FILES) for s in range(SLOTS)]
    plan = [("edit", k, s) for k, s in edits] + [("read", k % FILES, 0) for k in range(200)]
    rng.shuffle(plan)

    async def one(kind: str, k: int, slot: int) -> str | None:
        if kind == "read":
            result = await backend.aread(f"/list{k}.md")
            assert result.lines[:1] == [f"# list {k}"], result
            return result.error
        old, new = f"slot-{slot:03d}: todo", f"slot-{slot:03d}: done"
        return (await backend.aedit(f"/list{k}.md", old, new)).error

    async def run() -> list[str | None]:
        return await asyncio.gather(*(one(*task) for task in plan))

    assert asyncio.run(run()) == [None] * len(plan)
    for k in range(FILES):
        content = "\n".join(backend.read(f"/list{k}.md", limit=1000).lines) + "\n"
        assert "todo" not in content, content
        assert content.count(": done") == SLOTS
        # Every revision is a state that was committed: the last one is the file now.
        history = store.history(NS, f"/list{k}.md")
        newest = max(history, key=lambda r: r.number)
        assert store.revision(NS, f"/list{k}.md", newest.number).content == content


def test_edits_racing_another_worker_lose_nothing(store: SQLStore) -> None:
    """Grouped edits on this loop and in-place edits of another store object, on the same files."""
    backend = StoreBackend(store=store, namespace=NS)
    for k in range(2):
        backend.write(f"/list{k}.md", _checklist(k))
    other = StoreBackend(store=_twin(store), namespace=NS)
    theirs = [(k, s) for k in range(2) for s in range(SLOTS) if s % 2]
    ours = [(k, s) for k in range(2) for s in range(SLOTS) if not s % 2]
    start = threading.Event()
    their_errors: list[str | None] = []

    def worker() -> None:
        start.wait()
        for k, s in theirs:
            edit = other.edit(f"/list{k}.md", f"slot-{s:03d}: todo", f"slot-{s:03d}: theirs")
            their_errors.append(edit.error)

    async def run() -> list[str | None]:
        async def one(k: int, s: int) -> str | None:
            await asyncio.sleep(random.random() / 50)
            edit = await backend.aedit(f"/list{k}.md", f"slot-{s:03d}: todo", f"slot-{s:03d}: ours")
            return edit.error

        start.set()
        return await asyncio.gather(*(one(k, s) for k, s in ours))

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert asyncio.run(run()) == [None] * len(ours)
    finally:
        thread.join()
        other_store = other.store
        assert other_store is not None
        other_store.close()
    assert their_errors == [None] * len(theirs)
    for k in range(2):
        content = "\n".join(backend.read(f"/list{k}.md", limit=1000).lines) + "\n"
        for s in range(SLOTS):
            assert f"slot-{s:03d}: {'theirs' if s % 2 else 'ours'}" in content


def test_concurrent_edits_of_one_string_let_exactly_one_win(store: SQLStore) -> None:
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/one.md", "status: open\nother: x\n")

    async def run() -> list[str | None]:
        return [
            r.error
            for r in await asyncio.gather(
                backend.aedit("/one.md", "status: open", "status: closed"),
                backend.aedit("/one.md", "status: open", "status: merged"),
                backend.aedit("/one.md", "other: x", "other: y"),
                backend.aedit("/one.md", "missing", "never"),
            )
        ]

    errors = asyncio.run(run())
    assert errors[0] is None and errors[1] is not None and "not found" in errors[1].lower()
    assert errors[2] is None
    assert errors[3] is not None and "missing" in errors[3]
    assert "\n".join(backend.read("/one.md").lines) + "\n" == "status: closed\nother: y\n"


def test_edits_apply_in_turn_only_where_the_string_occurs_once() -> None:
    text, applied = apply_edits(
        "a b a c\n", [("a", "x", "t1"), ("b", "a", "t2"), ("c", "b", "t3"), ("b", "d", "t4")]
    )
    assert applied == [False, True, True, True]
    assert text == "a a a d\n"


@pytest.mark.postgres
def test_one_failing_statement_fails_only_its_own_call(make_store) -> None:
    store = make_store("postgres")

    async def run() -> list[object]:
        return await asyncio.gather(
            store.aput(NS, "good", {"v": 1}),
            store.aput(NS, "bad", {"v": "\x00"}),  # jsonb cannot hold U+0000
            store.aput(NS, "also-good", {"v": 2}),
            *(store.aget(NS, "good") for _ in range(5)),
            return_exceptions=True,
        )

    results = asyncio.run(run())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Exception) and "\\u0000" in str(results[1])
    assert store.get(NS, "good").value == {"v": 1}
    assert store.get(NS, "also-good").value == {"v": 2}
    assert store.get(NS, "bad") is None


@pytest.mark.postgres
def test_a_read_its_caller_writes_after_is_answered_first(make_store) -> None:
    """An edit group's read (``Step.first``) resumes its caller before the batch's other reads."""
    store = make_store("postgres")
    store.file_put(NS, "/a.md", StoredFile("a\n", "utf-8", "t", "t"), expected_version=None)
    resumed: list[str] = []

    async def read(name: str, first: bool) -> None:
        file = await store.afile_get(NS, "/a.md", before_write=first)
        assert file is not None and file.content == "a\n"
        resumed.append(name)

    async def run() -> None:
        # The plain reads are queued first, the writer's read last: all in one batch.
        await asyncio.gather(*(read(f"plain-{i}", False) for i in range(5)), read("writer", True))

    asyncio.run(run())
    assert resumed[0] == "writer", resumed
    assert sorted(resumed[1:]) == [f"plain-{i}" for i in range(5)]


@pytest.mark.postgres
@pytest.mark.parametrize("expiry", [False, True])
def test_concurrent_reads_of_many_files_run_as_one_statement(
    make_store, monkeypatch, expiry: bool
) -> None:
    """Reads of different files (some missing, binary or read in another window) answered
    by one statement per kind of read, each exactly as if it had run alone."""
    from datetime import timedelta

    from deepmemory.stores import _coalesce

    base = make_store("postgres")
    # (Reads that count as use write, so they never merge: this expiry only hides.)
    hides = Expiry(timedelta(days=1), refresh_on_read=False)
    store = base.with_expiry(hides) if expiry else base
    files = {f"/m/f{k}.md": "".join(f"file {k} line {n}\n" for n in range(k + 3)) for k in range(8)}
    for key, text in files.items():
        store.file_put(NS, key, StoredFile(text, "utf-8", "t", "t"), expected_version=None)
    binary = StoredFile("AAEC", "base64", "t", "t")
    store.file_put(NS, "/m/bin.dat", binary, expected_version=None)
    keys = [*files, "/m/bin.dat", "/m/missing.md"]
    windows = [(0, 2000), (1, 2), (4, 10)]
    calls = [(key, off, lim) for key in keys for off, lim in windows]
    alone = {call: store.file_read_lines(NS, *call) for call in calls}
    got_files = {key: store.file_get(NS, key) for key in keys}

    sent: list[int] = []
    pipelined = _coalesce._pipelined

    async def counting(conn, steps):
        sent.append(len(steps))
        return await pipelined(conn, steps)

    monkeypatch.setattr(_coalesce, "_pipelined", counting)

    async def run() -> tuple[list[object], list[object]]:
        lines = asyncio.gather(*(store.afile_read_lines(NS, *call) for call in calls))
        gets = asyncio.gather(*(store.afile_get(NS, key) for key in keys))
        return await asyncio.gather(lines, gets)

    lines, gets = asyncio.run(run())
    assert dict(zip(calls, lines, strict=True)) == alone
    for key, file in zip(keys, gets, strict=True):
        want = got_files[key]
        assert (file is None) == (want is None), key
        if want is not None:
            assert (file.content, file.encoding, file.version) == (
                want.content,
                want.encoding,
                want.version,
            )
    # 30 line reads (three windows) and 10 file reads: one statement for each kind of
    # read, both in one round trip.
    assert sent == [2], sent


@pytest.mark.postgres
def test_concurrent_compare_and_swap_writes_run_as_one_statement(make_store, monkeypatch) -> None:
    """Compare-and-swap writes of different files, one statement: each lands only on its
    own expected version, gets its own new version and records its own revision."""
    from deepmemory.backends.protocol import Author
    from deepmemory.stores import _coalesce

    store = make_store("postgres")
    keys = [f"/w/f{k}.md" for k in range(6)]
    for key in keys:
        store.file_put(NS, key, StoredFile(f"{key} v1\n", "utf-8", "t", "t"), expected_version=None)
    versions = {key: store.file_get(NS, key).version for key in keys}
    stale = keys[-1]  # another writer got there first: its CAS below must not land
    store.file_put(NS, stale, StoredFile("moved on\n", "utf-8", "t", "t"), expected_version=None)
    sent: list[tuple[int, bool]] = []
    pipelined = _coalesce._pipelined

    async def counting(conn, steps):
        sent.append((len(steps), True))
        return await pipelined(conn, steps)

    monkeypatch.setattr(_coalesce, "_pipelined", counting)
    alone = _coalesce._alone

    async def retried(conn, job):  # the merged statement failed: each ran on its own
        sent.append((-1, False))
        await alone(conn, job)

    monkeypatch.setattr(_coalesce, "_alone", retried)
    author = Author("thread-9", "user-9", None)

    async def run() -> list[int | None]:
        return await asyncio.gather(
            *(
                store.afile_put(
                    NS,
                    key,
                    StoredFile(f"{key} v2\n", "utf-8", "t", f"m{k}"),
                    expected_version=versions[key],
                    author=author,
                    op="edit",
                )
                for k, key in enumerate(keys)
            )
        )

    results = asyncio.run(run())
    # Six writes, one statement (so one transaction), none run again on its own.
    assert sent == [(1, True)], sent
    assert results[-1] is None
    assert store.file_get(NS, stale).content == "moved on\n"
    for k, (key, version) in enumerate(zip(keys[:-1], results[:-1], strict=True)):
        file = store.file_get(NS, key)
        assert version is not None and version > versions[key]
        assert (file.content, file.version, file.modified_at) == (f"{key} v2\n", version, f"m{k}")
        newest = max(store.history(NS, key), key=lambda r: r.number)
        assert (newest.op, newest.thread_id, newest.user) == ("edit", "thread-9", "user-9")
        assert newest.size == len(f"{key} v2\n")
        assert store.revision(NS, key, newest.number).content == f"{key} v2\n"
    assert [r.op for r in store.history(NS, stale)] != []
    assert all(
        store.revision(NS, stale, r.number).content != f"{stale} v2\n"
        for r in store.history(NS, stale)
    )
    assert len({*results[:-1]}) == len(keys) - 1  # each its own new version


@pytest.mark.postgres
def test_merged_statements_carry_any_text_exactly(make_store, monkeypatch) -> None:
    """Rows of a merged statement travel as binary text arrays: quotes, backslashes,
    braces, commas, JSON escapes, non-ASCII and NULL arrive exactly as sent."""
    from deepmemory.stores import _coalesce

    store = make_store("postgres")
    texts = [
        'say "hi"\n',
        'back\\slash \\ and \\"quoted\\"\n',
        "{braces}, [commas], 'quotes'\n",
        "NULL\n",
        "",
        "caf\u00e9 \u2603 \U0001f600 \t tab\r\n",
    ]
    keys = [f"/t/odd{k}.md" for k in range(len(texts))]
    for key in keys:
        store.file_put(NS, key, StoredFile("v1\n", "utf-8", "t", "t"), expected_version=None)
    versions = {key: store.file_get(NS, key).version for key in keys}
    sent: list[int] = []
    pipelined = _coalesce._pipelined

    async def counting(conn, steps):
        sent.append(len(steps))
        return await pipelined(conn, steps)

    monkeypatch.setattr(_coalesce, "_pipelined", counting)

    async def run() -> tuple[list[int | None], list[object]]:
        written = await asyncio.gather(
            *(
                store.afile_put(
                    NS,
                    key,
                    StoredFile(text, "utf-8", "t", f'm"{k}\\'),
                    expected_version=versions[key],
                )
                for k, (key, text) in enumerate(zip(keys, texts, strict=True))
            )
        )
        read = await asyncio.gather(*(store.afile_get(NS, key) for key in [*keys, "/t/{x,y}"]))
        return written, read

    written, read = asyncio.run(run())
    assert sent == [1, 1], sent  # one merged write, then one merged read
    assert all(version is not None for version in written)
    for k, (text, file) in enumerate(zip(texts, read, strict=False)):
        assert (file.content, file.modified_at) == (text, f'm"{k}\\'), k
    assert read[-1] is None


def test_identical_concurrent_reads_get_results_of_their_own(store: SQLStore) -> None:
    """Identical reads share one query and one worked-out window, never a result object:
    a caller changing its lines changes nobody else's."""
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/same.md", "one\ntwo\nthree\n")

    async def run() -> list[object]:
        return await asyncio.gather(*(backend.aread("/same.md") for _ in range(20)))

    results = asyncio.run(run())
    assert all(r.lines == ["one", "two", "three"] for r in results)
    results[0].lines.append("mine")
    results[1].lines[0] = "changed"
    assert all(r.lines == ["one", "two", "three"] for r in results[2:])
    assert backend.read("/same.md").lines == ["one", "two", "three"]


@pytest.mark.postgres
def test_thousands_of_concurrent_store_calls_share_a_small_pool(pg_url, monkeypatch) -> None:
    """Every LangGraph call at once on two connections: no call waits for a connection
    that a runner waiting for another one holds (that ends in ``PoolTimeout``)."""
    import uuid

    from langgraph.store.base import PutOp

    from deepmemory.stores import postgres
    from tests.stores.conftest import drop_schema

    monkeypatch.setattr(postgres, "POOL_TIMEOUT", 5.0)
    schema = f"deepmemory_many_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(pg_url, schema=schema, max_connections=2)
    users = 40

    async def one(i: int) -> object:
        ns = ("many", f"u{i % users}")
        match i % 5:
            case 0:
                return await store.aput(ns, f"k{i}", {"i": i})
            case 1:
                return await store.aget(ns, f"k{i - 1}")
            case 2:
                return await store.asearch(ns, filter={"i": i - 2}, limit=5)
            case 3:
                return await store.alist_namespaces(prefix=("many",), limit=100)
            case _:
                return await store.adelete(ns, f"old{i}" if i % 10 == 4 else "missing")

    async def run(calls: int) -> list[object]:
        return await asyncio.gather(*(one(i) for i in range(calls)))

    try:
        olds = [i for i in range(4, 3000, 5)]
        store.batch([PutOp(("many", f"u{i % users}"), f"old{i}", {"i": i}) for i in olds])
        results = asyncio.run(run(3000))
        assert all(r is None for r in results[0::5])  # every put answered
        for i in range(1, 3000, 5):  # each get saw its put or nothing, never another item
            assert results[i] is None or results[i].value == {"i": i - 1}  # type: ignore[attr-defined]
        for i in range(2, 3000, 5):
            assert all(item.value == {"i": i - 2} for item in results[i])  # type: ignore[attr-defined]
        assert {tuple(ns) for ns in results[-2]} <= {("many", f"u{u}") for u in range(users)}
        left = {item.key for item in store.search(("many",), limit=10_000)}
        puts = {f"k{i}" for i in range(0, 3000, 5)}
        kept = {f"old{i}" for i in olds if i % 10 != 4}  # the deletes took the others
        assert left == puts | kept
    finally:
        store.close()
        drop_schema(pg_url, schema)


@pytest.mark.postgres
def test_a_call_finding_every_connection_busy_fails_clearly_after_the_timeout(
    pg_url, monkeypatch
) -> None:
    import uuid

    from psycopg_pool import PoolTimeout

    from deepmemory.stores import PoolBusyError, postgres
    from tests.stores.conftest import drop_schema

    monkeypatch.setattr(postgres, "POOL_TIMEOUT", 0.5)
    schema = f"deepmemory_busy_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(pg_url, schema=schema, max_connections=2)
    try:
        store.put(NS, "k", {"v": 1})
        pool = store._sync_pool()
        with pool.connection(), pool.connection():  # other threads' calls hold both
            with pytest.raises(PoolBusyError, match="all 2 connections") as caught:
                store.get(NS, "k")
        assert isinstance(caught.value, PoolTimeout)  # still what psycopg users catch
        assert "max_connections" in str(caught.value)
        assert store.get(NS, "k").value == {"v": 1}  # free again: works

        async def held_then_get() -> None:
            apool = await store._async_pool()
            async with apool.connection(), apool.connection():
                with pytest.raises(PoolBusyError, match="stayed busy"):
                    await store.aget(NS, "k")
            assert (await store.aget(NS, "k")).value == {"v": 1}

        asyncio.run(held_then_get())
    finally:
        store.close()
        drop_schema(pg_url, schema)


def _reltuples(store: PostgresStore) -> float:
    with store._sync_pool().connection() as conn:
        row = conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'deepmemory_items'::regclass"
        ).fetchone()
    assert row is not None
    return float(row[0])


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bulk_loads_leave_the_planner_statistics(pg_url, mode) -> None:
    """Searches right after a load use their indexes (m008): large batches analyze the table."""
    import uuid

    from langgraph.store.base import PutOp

    from tests.stores.conftest import drop_schema

    schema = f"deepmemory_analyze_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(pg_url, schema=schema)

    def load(start: int, count: int) -> None:
        ops = [
            PutOp(NS, f"/f{i}.md", {"content": f"note {i}\n"}) for i in range(start, start + count)
        ]
        if mode == "sync":
            store.batch(ops)
        else:
            asyncio.run(store.abatch(ops))

    try:
        load(0, 10)
        assert _reltuples(store) == 0  # analyzed empty by the migration
        load(10, 900)
        assert _reltuples(store) == 0  # too few rows yet to matter
        load(910, 200)
        assert _reltuples(store) == 1110
        load(1110, 200)  # fewer than a tenth of the table: its statistics still hold
        assert _reltuples(store) == 1110
    finally:
        store.close()
        drop_schema(pg_url, schema)


@pytest.mark.postgres
def test_a_statement_chosen_as_a_deadlock_victim_runs_again(make_store, monkeypatch) -> None:
    """The server rolls a deadlock's victim back; its caller gets the result of a rerun."""
    import psycopg.errors

    from deepmemory.stores import _coalesce

    store = make_store("postgres")
    real = _coalesce._rows
    failures = {"left": 2}

    async def deadlocking(conn, step):
        if step.write and failures["left"]:
            failures["left"] -= 1
            raise psycopg.errors.DeadlockDetected("deadlock detected (test)")
        return await real(conn, step)

    monkeypatch.setattr(_coalesce, "_rows", deadlocking)
    asyncio.run(store.aput(NS, "k", {"v": 1}))
    assert failures["left"] == 0
    assert store.get(NS, "k").value == {"v": 1}
    failures["left"] = _coalesce.RETRIES + 1  # one more than it tries: the error is the caller's
    with pytest.raises(psycopg.errors.DeadlockDetected):
        asyncio.run(store.aput(NS, "k", {"v": 2}))
    assert store.get(NS, "k").value == {"v": 1}


@pytest.mark.postgres
def test_a_batch_is_all_or_nothing(make_store) -> None:
    """A batch whose last write fails commits none of the others: each runs again on
    its own and lands exactly once (were the first committed already, its
    compare-and-swap would then fail against its own write, and its caller would be
    told it failed although it landed)."""
    store = make_store("postgres")
    store.file_put(NS, "/a.md", StoredFile("v1\n", "utf-8", "t", "t"), expected_version=None)
    version = store.file_get(NS, "/a.md").version

    async def run() -> list[object]:
        return await asyncio.gather(
            store.afile_put(
                NS, "/a.md", StoredFile("v2\n", "utf-8", "t", "t"), expected_version=version
            ),
            store.aput(NS, "z-bad", {"v": "\x00"}),  # jsonb cannot hold U+0000
            return_exceptions=True,
        )

    written, failed = asyncio.run(run())
    assert isinstance(failed, Exception)
    assert isinstance(written, int) and written > version, written
    assert store.file_get(NS, "/a.md").content == "v2\n"
    assert [r.op for r in store.history(NS, "/a.md")] == ["write", "write"]


@pytest.mark.postgres
def test_a_failed_batch_leaves_its_connection_working(pg_url, pg_schema) -> None:
    """A failing statement ahead of one due for preparing (psycopg prepares a statement
    on its fifth use on a connection) in one batch: the batch rolls back, each call
    runs again on its own, and every later call on that connection works. (psycopg
    records the skipped statement as prepared though the server never saw it.)"""
    store = PostgresStore(pg_url, schema=pg_schema, max_connections=2)
    store.put(NS, "b-gone", {"n": 0})

    async def run() -> list[tuple[object, object]]:
        got = []
        for _ in range(8):  # the delete's fifth use falls in a failing batch, behind the put
            bad, good = await asyncio.gather(
                store.aput(NS, "a-bad", {"v": "\x00"}),  # jsonb cannot hold U+0000
                store.adelete(NS, "b-gone"),
                return_exceptions=True,
            )
            got.append((bad, good))
        return got

    try:
        outcomes = asyncio.run(run())
        assert all(isinstance(bad, Exception) and good is None for bad, good in outcomes), [
            repr(o)[:120] for pair in outcomes for o in pair if o is not None
        ][:3]
        assert store.get(NS, "b-gone") is None
        assert store.get(NS, "a-bad") is None
    finally:
        store.close()


@pytest.mark.postgres
def test_thousands_of_calls_that_refresh_ttls_neither_deadlock_nor_break_connections(
    pg_url, pg_schema
) -> None:
    """LangGraph's async pattern with refresh-on-read: a refreshing get or search also
    updates rows, so a batch of reads can be a deadlock's victim. The batch is one
    transaction: the victim rolls back, each call runs again on its own, and the
    connection forgets what the pipeline prepared (otherwise it keeps using statement
    names the server never prepared)."""
    store = PostgresStore(
        pg_url,
        schema=pg_schema,
        ttl={"default_ttl": 5, "refresh_on_read": True},
    )

    async def run() -> list[object]:
        calls = []
        for m in range(10):
            ns = ("ttl-load", str(m % 2))
            for i in range(100):
                calls += [
                    store.aput(ns, f"key{i}", {"foo": f"bar{i}"}),
                    store.aget(ns, f"key{i}"),
                    store.alist_namespaces(prefix=None, max_depth=m + 1),
                    store.asearch(ns, limit=5),
                    store.aput(ns, f"key{i}", {"foo": f"baz{i}"}),
                    store.adelete(ns, f"key{i}"),
                ]
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        outcomes = asyncio.run(run())
        failures = [repr(o)[:160] for o in outcomes if isinstance(o, BaseException)]
        assert failures == [], failures[:5]

        async def after() -> list[object]:  # every pooled connection still works
            return await asyncio.gather(*(store.asearch(("ttl-load", "0")) for _ in range(50)))

        assert all(isinstance(found, list) for found in asyncio.run(after()))
    finally:
        store.close()


@pytest.mark.postgres
def test_event_loops_that_end_leave_no_pools_behind(pg_url, pg_schema) -> None:
    """Sync code calling ``asyncio.run`` again and again: each run's pool is closed with
    its loop once the next run begins, so connections do not pile up on the server."""
    import psycopg

    store = PostgresStore(pg_url, schema=pg_schema)
    count = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend'"
    )
    try:
        store.put(NS, "k", {"v": 1})
        with psycopg.connect(pg_url, autocommit=True) as watcher:
            asyncio.run(store.aget(NS, "k"))
            before = watcher.execute(count).fetchone()[0]
            for _ in range(20):
                assert asyncio.run(store.aget(NS, "k")).value == {"v": 1}
            after = watcher.execute(count).fetchone()[0]
        assert after <= before + 1, (before, after)
    finally:
        store.close()


_SHUTDOWN_SCRIPT = """
import asyncio, sys
from deepmemory.stores import PostgresStore

store = PostgresStore(sys.argv[1], schema=sys.argv[2], max_connections=6)
store.put(("shutdown",), "k", {"v": 1})

async def burst():
    found = await asyncio.gather(*(store.aget(("shutdown",), "k") for _ in range(3000)))
    assert all(item.value == {"v": 1} for item in found)

for _ in range(3):
    asyncio.run(burst())  # ends while the pool still grows (new connections are slow)
store.close()

late = PostgresStore(sys.argv[1], schema=sys.argv[2])
late.put(("shutdown",), "k", {"v": 1})  # tables checked: the async pool is all that is left

async def give_up():
    try:
        await asyncio.wait_for(late.aget(("shutdown",), "k"), 0.1)
    except TimeoutError:
        pass

asyncio.run(give_up())  # ends while the async pool still makes its first connection
late.close()
print("ended")
"""


@pytest.mark.postgres
def test_asyncio_run_ends_while_the_pool_is_still_growing(pg_url, pg_schema) -> None:
    """A burst of calls makes the async pool grow; when it is answered before the new
    connections arrive, ``asyncio.run`` cancels the pool's workers mid-connect. They
    swallow that cancellation (psycopg_pool), so ``asyncio.run`` never returned; the
    store closes the pool as the loop ends instead. The same when the loop ends while
    the pool is still opening (a caller gave up waiting). (New connections go through a
    proxy that holds each one for a while, so they are still in flight at the end.)"""
    import subprocess
    import sys

    from tests.fakes.slow_proxy import SlowProxy

    server = urlsplit(pg_url)
    with SlowProxy((server.hostname or "127.0.0.1", server.port or 5432), delay=0.5) as proxy:
        try:
            done = subprocess.run(
                [sys.executable, "-c", _SHUTDOWN_SCRIPT, proxy.url(pg_url), pg_schema],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("asyncio.run() did not return: the pool's workers outlived its loop")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ended"
    assert done.stderr == ""  # no "error connecting" for the connects the ending cut short


@pytest.mark.postgres
def test_a_store_works_again_after_every_other_task_of_its_loop_was_cancelled(
    pg_url, pg_schema
) -> None:
    """A common shutdown step cancels every task but the current one, the pool's guard
    included (which then closes the pool): the next call opens a new pool, for the
    store and for its checkpointer alike."""
    store = PostgresStore(pg_url, schema=pg_schema)
    store.put(NS, "k", {"v": 1})
    saver = store.checkpointer()
    config = {"configurable": {"thread_id": "t-cancelled", "checkpoint_ns": ""}}

    async def run() -> tuple[object, object]:
        assert (await store.aget(NS, "k")).value == {"v": 1}
        await saver.aget_tuple(config)
        others = _others()
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        return (await store.aget(NS, "k")).value, await saver.aget_tuple(config)

    try:
        value, checkpoint = asyncio.run(run())
        assert value == {"v": 1} and checkpoint is None
    finally:
        store.close()


@pytest.mark.postgres
def test_aclose_leaves_no_task_of_the_store_on_its_loop(pg_url, pg_schema) -> None:
    """A long-lived loop (a server) opening and closing stores keeps none of them: after
    ``aclose()`` neither the pool's workers nor its guard are left pending."""

    async def run() -> list[str]:
        for _ in range(3):
            store = PostgresStore(pg_url, schema=pg_schema)
            await store.aput(NS, "k", {"v": 1})
            await store.aclose()
        await asyncio.sleep(0)
        return [repr(t) for t in _others()]

    assert asyncio.run(run()) == []


@pytest.mark.postgres
def test_close_from_another_thread_closes_the_pool_of_a_running_loop(pg_url, pg_schema) -> None:
    store = PostgresStore(pg_url, schema=pg_schema)

    async def run() -> list[str]:
        await store.aput(NS, "k", {"v": 1})
        await asyncio.to_thread(store.close)  # another thread, while this loop runs
        await _settled()
        return [repr(t) for t in _others()]

    assert asyncio.run(run()) == []


@pytest.mark.postgres
def test_aclose_while_the_pool_opens_hands_it_to_nobody_and_leaves_nothing(
    pg_url, pg_schema
) -> None:
    from deepmemory.errors import DeepMemoryError
    from tests.fakes.slow_proxy import SlowProxy

    server = urlsplit(pg_url)
    with SlowProxy((server.hostname or "127.0.0.1", server.port or 5432), delay=0.0) as proxy:
        store = PostgresStore(proxy.url(pg_url), schema=pg_schema)
        store.put(NS, "k", {"v": 1})
        proxy.delay = 0.5  # the async pool's first connection is slow

        async def run() -> tuple[list[object], list[str]]:
            caller = asyncio.create_task(store.aget(NS, "k"))
            await asyncio.sleep(0.1)  # the pool is opening
            await store.aclose()
            got = await asyncio.gather(caller, return_exceptions=True)
            await _settled()
            return got, [repr(t)[:100] for t in _others()]

        got, left = asyncio.run(run())
    assert isinstance(got[0], DeepMemoryError), got
    assert left == []


@pytest.mark.postgres
def test_connections_do_not_pile_up_over_runs_that_grow_the_pool(pg_url, pg_schema) -> None:
    """``asyncio.run`` again and again, each run's calls growing its pool: each pool's
    connections close with its loop (its workers' cancellation cuts ``pool.close()``
    short before it closes them), not whenever the garbage collector gets to them."""
    counts = []
    with _counted_store(pg_url, pg_schema) as (store, connections):

        async def grow() -> None:  # searches run on connections of their own: it grows
            await asyncio.gather(*(store.asearch(NS, filter={"v": 1}) for _ in range(30)))

        for _ in range(12):
            asyncio.run(grow())
            counts.append(connections(at_most=2))
    assert max(counts) <= 2, counts  # the blocking pool's connections only


@pytest.mark.postgres
def test_close_never_runs_an_event_loop_of_another_thread(pg_url, pg_schema) -> None:
    """Another thread's loop, idle between two of its calls: ``close()`` must not run it
    (that thread may start it again at any moment); its pool closes when it runs next."""
    store = PostgresStore(pg_url, schema=pg_schema)
    store.put(NS, "k", {"v": 1})
    used, closed = threading.Event(), threading.Event()
    ran_in: list[int] = []
    outcome: list[object] = []

    def other() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(store.aget(NS, "k"))
            loop.call_soon(lambda: ran_in.append(threading.get_ident()))
            used.set()
            closed.wait(30)
            loop.run_until_complete(_settled())  # its guard closes the pool
            outcome.extend(t for t in asyncio.all_tasks(loop) if not t.done())
        finally:
            loop.close()

    thread = threading.Thread(target=other)
    thread.start()
    assert used.wait(30)
    store.close()
    closed.set()
    thread.join(30)
    assert ran_in == [thread.ident], "close() ran the other thread's loop"
    assert outcome == []


# psycopg_pool's workers of a loop closed by hand cannot end cleanly (ending needs the
# loop): their coroutines, collected, report "Event loop is closed". Expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.postgres
def test_event_loops_closed_by_hand_leave_no_connections_behind(pg_url, pg_schema) -> None:
    """Loops run and closed by hand (``run_until_complete``, ``close``: no task is
    cancelled, so no guard runs): each one's pool is found stale at the next use and its
    connections closed, so they do not pile up until the garbage collector runs."""
    counts = []
    with _counted_store(pg_url, pg_schema) as (store, connections):
        for _ in range(10):
            loop = asyncio.new_event_loop()
            try:
                assert loop.run_until_complete(store.aget(NS, "k")).value == {"v": 1}
            finally:
                loop.close()
            counts.append(connections(at_most=3))
    assert max(counts) <= 3, counts  # the blocking pool's, and the last loop's pool


async def _settled() -> None:
    """Until no other task of this loop is left (at most 10 s)."""
    for _ in range(1000):
        if not _others():
            return
        await asyncio.sleep(0.01)


def _others() -> list[asyncio.Task[Any]]:
    """The tasks of this loop but the current one."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


@contextlib.contextmanager
def _counted_store(pg_url: str, schema: str) -> Iterator[tuple[PostgresStore, Callable[..., int]]]:
    """A store holding ``NS/k``, and its connections' count on the server, with the
    garbage collector off (so only the store's own closing closes connections)."""
    import gc

    import psycopg

    name = f"dm-count-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(
        pg_url + ("&" if "?" in pg_url else "?") + f"application_name={name}", schema=schema
    )
    store.put(NS, "k", {"v": 1})
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    gc.disable()
    try:
        with psycopg.connect(pg_url, autocommit=True) as watcher:

            def connections(at_most: int) -> int:
                """The count once it is ``at_most``, or after 3 s (a backend whose
                client just hung up mid-connect takes a moment to go)."""
                for _ in range(300):
                    found = int(watcher.execute(query, (name,)).fetchone()[0])
                    if found <= at_most:
                        break
                    time.sleep(0.01)
                return found

            yield store, connections
    finally:
        gc.enable()
        store.close()
        gc.collect()  # the finalizers of what was left, now rather than mid-report
