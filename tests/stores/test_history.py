"""Every write, edit and delete of a file is a numbered revision: listed, shown, diffed, restored.

The same behaviour on SQLiteStore, PostgresStore (real server) and InMemoryHistoryStore,
through the stores' history API and through StoreBackend, sync and async.
"""

from __future__ import annotations

import asyncio
import doctest
import inspect
import itertools
import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import psycopg
import pytest

import deepmemory.history
from deepmemory.backends import StoreBackend
from deepmemory.backends.protocol import Author, StoredFile, SupportsHistory
from deepmemory.errors import ConfigError
from deepmemory.history import RevisionNotFoundError
from deepmemory.stores import InMemoryHistoryStore, PostgresStore, SQLiteStore
from deepmemory.stores._revisions import Retention
from deepmemory.stores.migrations import migrate_postgres, migrate_sqlite
from tests.stores.conftest import _empty_schema

NS = ("memories", "alice")
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"]
ALICE = Author(thread_id="t-1", user="alice", assistant="helper")


@pytest.fixture
def make(request, tmp_path):
    """``make(kind, **retention)``: a new store of that kind, closed after the test."""
    made, counter = [], itertools.count()

    def build(kind, **options):
        if kind == "sqlite":
            store = SQLiteStore(tmp_path / f"memory-{next(counter)}.db", **options)
        elif kind == "postgres":
            url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
            store = PostgresStore(url, schema=schema, **options)
        else:
            store = InMemoryHistoryStore(**options)
        made.append(store)
        return store

    yield build
    for store in made:
        if not isinstance(store, InMemoryHistoryStore):
            store.close()
        if isinstance(store, PostgresStore):
            _empty_schema(store.connection_string, store.schema)


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def store(make, kind):
    return make(kind)


@pytest.fixture(params=["sync", "async"])
def call(request):
    """``call(obj, "name", ...)``: the method, or its ``a``-twin run to completion."""

    def run(obj, name, *args, **kwargs):
        if request.param == "sync":
            return getattr(obj, name)(*args, **kwargs)
        return asyncio.run(getattr(obj, "a" + name)(*args, **kwargs))

    return run


def files(store):
    return StoreBackend(store=store, namespace=NS).mounted("/memories")


def ops(store, key="/notes.txt"):
    return [(r.number, r.op) for r in store.history(NS, key)]


def test_our_stores_keep_history(store):
    assert isinstance(store, SupportsHistory)


def test_write_edit_and_delete_each_record_a_numbered_revision(store, call):
    fs = files(store)
    call(fs, "write", "/memories/notes.txt", "tea\n")
    call(fs, "edit", "/memories/notes.txt", "tea", "coffee")
    call(fs, "delete", "/memories/notes.txt")
    revisions = call(store, "history", NS, "/notes.txt")
    assert [(r.number, r.op, r.size) for r in revisions] == [
        (1, "write", 4),
        (2, "edit", 7),
        (3, "delete", None),
    ]
    assert revisions[0].created_at <= revisions[1].created_at <= revisions[2].created_at
    assert revisions[0].created_at.endswith("+00:00")


def test_a_revision_holds_the_file_as_of_that_change(store, call):
    fs = files(store)
    fs.write("/memories/notes.txt", "tea\n")
    fs.edit("/memories/notes.txt", "tea", "coffee")
    fs.delete("/memories/notes.txt")
    assert call(store, "revision", NS, "/notes.txt", 1).content == "tea\n"
    assert call(store, "revision", NS, "/notes.txt", 2).content == "coffee\n"
    assert call(store, "revision", NS, "/notes.txt", 3) is None  # the deletion
    assert call(store, "revision", NS, "/notes.txt", 4) is None
    assert call(store, "revision", NS, "/other.txt", 1) is None


def test_a_diff_between_two_revisions_is_a_unified_diff(store, call):
    fs = files(store)
    fs.write("/memories/notes.txt", "Instructions:\n- Be concise\n")
    fs.edit("/memories/notes.txt", "- Be concise\n", "- Be concise\n- Use bullet points\n")
    fs.edit("/memories/notes.txt", "concise", "brief")
    assert call(store, "diff", NS, "/notes.txt", 1, 2) == (
        "--- /notes.txt@1\n"
        "+++ /notes.txt@2\n"
        "@@ -1,2 +1,3 @@\n"
        " Instructions:\n"
        " - Be concise\n"
        "+- Use bullet points\n"
    )
    now = call(store, "diff", NS, "/notes.txt", 2, path="/memories/notes.txt")
    assert now.splitlines()[:2] == ["--- /memories/notes.txt@2", "+++ /memories/notes.txt (now)"]
    assert "-- Be concise" in now and "+- Be brief" in now
    assert call(store, "diff", NS, "/notes.txt", 3) == ""


def test_a_deleted_file_diffs_as_empty_and_comes_back_by_restoring_the_revision_before(store, call):
    fs = files(store)
    fs.write("/memories/notes.txt", "keep me\n")
    fs.delete("/memories/notes.txt")
    assert call(store, "diff", NS, "/notes.txt", 1, 2).endswith("-keep me\n")
    with pytest.raises(RevisionNotFoundError, match="deletion"):
        call(store, "restore", NS, "/notes.txt", 2)
    restored = call(store, "restore", NS, "/notes.txt", 1, author=ALICE)
    assert (restored.number, restored.op, restored.user) == (3, "restore", "alice")
    assert fs.read("/memories/notes.txt").lines == ["keep me"]


def test_restoring_writes_the_old_content_back_as_a_new_revision(store, call):
    fs = files(store)
    fs.write("/memories/notes.txt", "v1\n")
    fs.write("/memories/notes.txt", "v2\n")
    created = store.file_get(NS, "/notes.txt").created_at
    restored = call(store, "restore", NS, "/notes.txt", 1, author=ALICE)
    assert (restored.number, restored.op, restored.thread_id) == (3, "restore", "t-1")
    file = store.file_get(NS, "/notes.txt")
    assert (file.content, file.created_at) == ("v1\n", created)
    assert ops(store) == [(1, "write"), (2, "write"), (3, "restore")]
    # A restore is undone like any other change.
    call(store, "restore", NS, "/notes.txt", 2)
    assert fs.read("/memories/notes.txt").lines == ["v2"]


def test_an_unknown_revision_is_refused_naming_the_ones_that_exist(store, call):
    fs = files(store)
    for text in ("a", "b", "c"):
        fs.write("/memories/notes.txt", text)
    with pytest.raises(RevisionNotFoundError, match="no revision 9: its revisions are 1 to 3"):
        call(store, "diff", NS, "/notes.txt", 9)
    with pytest.raises(RevisionNotFoundError, match="no recorded revisions"):
        call(store, "restore", NS, "/never.txt", 1)
    assert store.file_get(NS, "/never.txt") is None


def test_history_errors_name_the_file_as_the_caller_knows_it(store, call):
    fs = files(store)
    fs.write("/memories/notes.txt", "keep me\n")
    fs.delete("/memories/notes.txt")
    path = "/memories/notes.txt"
    with pytest.raises(RevisionNotFoundError) as unknown:
        call(store, "diff", NS, "/notes.txt", 9, path=path)
    assert str(unknown.value).startswith(f"{path!r} has no revision 9: its revisions are 1, 2.")
    with pytest.raises(RevisionNotFoundError) as deletion:
        call(store, "restore", NS, "/notes.txt", 2, path=path)
    assert f"Revision 2 of {path!r} is its deletion" in str(deletion.value)
    with pytest.raises(RevisionNotFoundError, match=f"{path!r} has no revision 5"):
        call(store, "restore", NS, "/notes.txt", 5, path=path)
    fs.write("/memories/once.txt", "x")
    with pytest.raises(RevisionNotFoundError, match="no revision 3: its only revision is 1"):
        call(store, "diff", NS, "/once.txt", 3)


def test_retention_keeps_only_the_newest_revisions_of_each_file(make, kind, call):
    store = make(kind, keep_revisions=3)
    fs = files(store)
    for i in range(1, 8):
        call(fs, "write", "/memories/notes.txt", f"v{i}\n")
    fs.write("/memories/other.txt", "x")
    assert ops(store) == [(5, "write"), (6, "write"), (7, "write")]
    assert store.revision(NS, "/notes.txt", 4) is None
    assert ops(store, "/other.txt") == [(1, "write")]


def test_a_delete_prunes_nothing_so_the_last_content_stays_restorable(make, kind):
    store = make(kind, keep_revisions=2)
    fs = files(store)
    for text in ("a", "b", "c"):
        fs.write("/memories/notes.txt", text)
    fs.delete("/memories/notes.txt")
    assert ops(store) == [(2, "write"), (3, "write"), (4, "delete")]
    store.restore(NS, "/notes.txt", 3)
    assert ops(store) == [(4, "delete"), (5, "restore")]


def test_numbers_are_never_reused_after_a_delete_or_pruning(make, kind):
    store = make(kind, keep_revisions=1)
    fs = files(store)
    fs.write("/memories/notes.txt", "one")
    fs.write("/memories/notes.txt", "two")
    fs.delete("/memories/notes.txt")
    assert store.prune_history() == 1
    fs.write("/memories/notes.txt", "again")
    assert ops(store) == [(4, "write")]


def test_prune_history_applies_retention_to_every_file(store, call):
    fs = files(store)
    for key in ("/a.txt", "/b.txt"):
        for text in ("1", "2", "3"):
            fs.write(f"/memories{key}", text)
    store.retention = Retention(keep_revisions=1)  # as if reopened with a smaller retention
    assert call(store, "prune_history") == 4
    assert ops(store, "/a.txt") == [(3, "write")] and ops(store, "/b.txt") == [(3, "write")]
    assert call(store, "prune_history") == 0


def _age_revisions(store, days):
    """Make every recorded revision ``days`` older, as if made that long ago."""
    if isinstance(store, InMemoryHistoryStore):
        for kept in store._revisions.values():
            for i, (r, value) in enumerate(kept):
                moment = datetime.fromisoformat(r.created_at) - timedelta(days=days)
                kept[i] = (replace(r, created_at=moment.isoformat(timespec="microseconds")), value)
    elif isinstance(store, SQLiteStore):
        store._connection().execute(
            "UPDATE deepmemory_revisions SET created_at = "
            "strftime('%Y-%m-%dT%H:%M:%f000+00:00', created_at, ?)",
            (f"-{days} days",),
        )
    else:
        with psycopg.connect(store.connection_string, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{store.schema}"')
            conn.execute(
                "UPDATE deepmemory_revisions SET created_at = created_at - make_interval(days => %s)",
                (days,),
            )


def test_revisions_older_than_keep_days_are_pruned_when_the_file_is_written(make, kind):
    store = make(kind, keep_revisions=None, keep_days=7)
    fs = files(store)
    fs.write("/memories/notes.txt", "old")
    fs.write("/memories/other.txt", "old")
    _age_revisions(store, 10)
    fs.write("/memories/notes.txt", "new")
    assert ops(store) == [(2, "write")]
    assert ops(store, "/other.txt") == [(1, "write")]  # not written since: kept until pruned
    assert store.prune_history() == 1
    assert ops(store, "/other.txt") == []


def test_keep_revisions_zero_turns_recording_off(make, kind):
    store = make(kind, keep_revisions=0)
    fs = files(store)
    fs.write("/memories/notes.txt", "a")
    fs.edit("/memories/notes.txt", "a", "b")
    fs.delete("/memories/notes.txt")
    store.put(NS, "/plain.txt", {"content": "x"})
    assert ops(store) == [] and ops(store, "/plain.txt") == []
    with pytest.raises(ConfigError, match="keep_revisions=0"):
        store.restore(NS, "/notes.txt", 1)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"keep_revisions": -1}, "keep_revisions must be"),
        ({"keep_revisions": 2.5}, "keep_revisions must be"),
        ({"keep_revisions": True}, "keep_revisions must be"),
        ({"keep_days": 0}, "keep_days must be"),
        ({"keep_days": "7"}, "keep_days must be"),
    ],
)
def test_a_retention_that_makes_no_sense_is_refused_when_the_store_is_made(
    make, kind, options, message
):
    with pytest.raises(ConfigError, match=message):
        make(kind, **options)


def test_a_compare_and_swap_that_does_not_land_records_nothing(make, kind):
    if kind == "memory":
        pytest.skip("InMemoryHistoryStore writes without compare-and-swap")
    store = make(kind)
    version = store.file_put(NS, "/notes.txt", StoredFile("one"), expected_version=None)
    store.file_put(NS, "/notes.txt", StoredFile("two"), expected_version=version, op="edit")
    assert store.file_put(NS, "/notes.txt", StoredFile("x"), expected_version=version) is None
    assert store.file_put(NS, "/notes.txt", StoredFile("x"), expected_version=0) is None
    assert ops(store) == [(1, "write"), (2, "edit")]


def test_plain_langgraph_puts_and_deletes_of_files_are_recorded_other_items_are_not(store):
    store.put(NS, "/plain.txt", {"content": "from put"})
    store.delete(NS, "/plain.txt")
    store.delete(NS, "/never-existed.txt")
    store.put(NS, "profile", {"name": "Alice"})
    assert ops(store, "/plain.txt") == [(1, "write"), (2, "delete")]
    assert store.revision(NS, "/plain.txt", 1).content == "from put"
    assert ops(store, "/never-existed.txt") == [] and ops(store, "profile") == []


def test_uploads_and_directory_deletes_record_every_file(store):
    fs = files(store)
    fs.upload_files([("/memories/d/a.txt", b"a"), ("/memories/d/b.bin", b"\xff\x00")])
    fs.delete("/memories/d")
    for key in ("/d/a.txt", "/d/b.bin"):
        assert ops(store, key) == [(1, "write"), (2, "delete")]
    assert store.revision(NS, "/d/b.bin", 1).encoding == "base64"
    assert store.diff(NS, "/d/b.bin", 1, 2) == "Binary files /d/b.bin@1 and /d/b.bin@2 differ\n"


def test_the_backend_attributes_each_change_to_the_run_that_made_it(store):
    class Run:
        config = {"configurable": {"thread_id": "thread-a", "assistant_id": "coach"}}
        context = {"user_id": "alice"}

    fs = files(store).bind(Run())
    fs.write("/memories/notes.txt", "a")
    files(store).write("/memories/notes.txt", "b")  # outside any run
    first, second = store.history(NS, "/notes.txt")
    assert (first.thread_id, first.user, first.assistant) == ("thread-a", "alice", "coach")
    assert (second.thread_id, second.user, second.assistant) == (None, None, None)


def test_concurrent_editors_of_one_file_get_consecutive_numbers_and_lose_nothing(make, kind):
    store = make(kind)
    fs = files(store)
    fs.write("/memories/log.txt", "<END>")
    barrier = threading.Barrier(6)

    def editor(n):
        barrier.wait()
        for i in range(10):
            assert fs.edit("/memories/log.txt", "<END>", f"{n}-{i}\n<END>").error is None

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    revisions = store.history(NS, "/log.txt")
    assert [r.number for r in revisions] == list(range(12, 62))  # the newest 50 of 61
    assert store.revision(NS, "/log.txt", 61).content == store.file_get(NS, "/log.txt").content
    assert store.revision(NS, "/log.txt", 60).content.count("\n") == 59


def test_reads_listings_globs_and_greps_never_touch_the_revision_tables(make):
    store = make("sqlite")
    fs = files(store)
    fs.write("/memories/notes.txt", "needle\n")
    statements = []
    store._connection().set_trace_callback(statements.append)
    fs.read("/memories/notes.txt")
    fs.ls("/memories")
    fs.glob("**/*.txt", "/memories")
    fs.grep("needle", "/memories")
    assert statements and not [s for s in statements if "revision" in s]
    fs.edit("/memories/notes.txt", "needle", "pin")
    assert [s for s in statements if "deepmemory_revisions" in s]


def test_history_methods_have_async_twins_with_the_same_parameters():
    for name in ("history", "revision", "diff", "restore", "prune_history"):
        sync, asynchronous = getattr(SQLiteStore, name), getattr(SQLiteStore, "a" + name)
        assert inspect.iscoroutinefunction(asynchronous)
        assert inspect.signature(sync).parameters.keys() == (
            inspect.signature(asynchronous).parameters.keys()
        )


def test_the_history_module_examples_run():
    assert doctest.testmod(deepmemory.history).failed == 0


# -- migration m003 -----------------------------------------------------------------------


def _put(dialect, execute):
    from tests.stores.conftest import m001_put

    for key, value in [
        ("/old.txt", {"content": "written before history\n", "encoding": "utf-8"}),
        ("profile", {"name": "Alice"}),
    ]:
        execute(*m001_put(dialect, NS, key, value))


def test_an_m002_sqlite_database_gets_history_and_its_files_become_revision_1(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate_sqlite(conn, until="m002_grep_index") == ["m001_items", "m002_grep_index"]
    _put("sqlite", conn.execute)
    conn.close()
    with SQLiteStore(path) as store:
        _the_old_file_is_revision_1(store)
    assert migrate_sqlite(sqlite3.connect(path, isolation_level=None)) == []


@pytest.mark.postgres
def test_an_m002_postgres_schema_gets_history_and_its_files_become_revision_1(pg_url):
    from tests.stores.conftest import drop_schema

    schema = "deepmemory_m002_history"
    drop_schema(pg_url, schema)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert migrate_postgres(conn, schema=schema, until="m002_grep_index") == [
                "m001_items",
                "m002_grep_index",
            ]
            _put("postgres", conn.execute)
        with PostgresStore(pg_url, schema=schema) as store:
            _the_old_file_is_revision_1(store)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert migrate_postgres(conn, schema=schema) == []
    finally:
        drop_schema(pg_url, schema)


def _the_old_file_is_revision_1(store):
    (baseline,) = store.history(NS, "/old.txt")
    assert (baseline.number, baseline.op, baseline.user) == (1, "write", None)
    assert ops(store, "profile") == []
    files(store).edit("/memories/old.txt", "before", "after")
    assert store.diff(NS, "/old.txt", 1, 2).splitlines()[-2:] == [
        "-written before history",
        "+written after history",
    ]
    store.restore(NS, "/old.txt", 1)
    assert store.file_get(NS, "/old.txt").content == "written before history\n"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_in_memory_history_store_answers_the_file_tools_as_in_memory_store_does(mode):
    from langgraph.store.memory import InMemoryStore

    from tests.stores.test_backend_parity import SCRIPT, _run

    ours = StoreBackend(store=InMemoryHistoryStore(), namespace=NS).mounted("/memories")
    reference = StoreBackend(store=InMemoryStore(), namespace=NS).mounted("/memories")
    for step, (got, want) in enumerate(zip(_run(ours, mode), _run(reference, "sync"), strict=True)):
        assert got == want, SCRIPT[step]
