"""Forgetting: files expire after their TTL, caps evict the least recently used, prune reports.

Every store a ``StoreBackend`` can sit on (LangGraph's InMemoryStore and SqliteStore,
our InMemoryHistoryStore, SQLiteStore and PostgresStore on the real server), with a
controllable clock (``deepmemory.clock.ManualClock``): no test sleeps.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from deepmemory import errors
from deepmemory.backends import StoreBackend
from deepmemory.backends.protocol import FileUsage, SupportsHistory
from deepmemory.clock import ManualClock, use_clock
from deepmemory.errors import ConfigError
from deepmemory.pruning import PRUNE_AUTHOR, PrunePolicy, _repository, choose, prune_namespace
from deepmemory.stores import InMemoryHistoryStore, PostgresStore, SQLiteStore
from tests.stores.conftest import _empty_schema

NS = ("memories", "alice")
DAY = timedelta(days=1)
KINDS = [
    "inmemory",
    "langgraph-sqlite",
    "history-memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]
# Stores that record reads (so reads refresh a file's time to live).
TRACKS_READS = {"sqlite", "postgres"}


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with use_clock(ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))) as manual:
        assert isinstance(manual, ManualClock)
        yield manual


@pytest.fixture
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    made: list[Any] = []
    counter = itertools.count()

    def build(kind: str) -> Any:
        store: Any
        if kind == "inmemory":
            store = InMemoryStore()
        elif kind == "langgraph-sqlite":
            cm = SqliteStore.from_conn_string(str(tmp_path / f"lg-{next(counter)}.db"))
            store = cm.__enter__()
            store.setup()
            made.append(cm)
        elif kind == "history-memory":
            store = InMemoryHistoryStore()
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / f"ours-{next(counter)}.db")
            made.append(store)
        else:
            url = request.getfixturevalue("pg_url")
            schema = request.getfixturevalue("pg_schema")
            store = PostgresStore(url, schema=schema)
            made.append(store)
        return store

    yield build
    for thing in made:
        if isinstance(thing, PostgresStore):
            thing.close()
            _empty_schema(thing.connection_string, thing.schema)
        elif isinstance(thing, SQLiteStore):
            thing.close()
        else:
            thing.__exit__(None, None, None)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(make: Callable[[str], Any], kind: str) -> Any:
    return make(kind)


def files(store: Any, **policy: Any) -> StoreBackend:
    return StoreBackend(store=store, namespace=NS, **policy).mounted("/memories")


def _ok(result: Any) -> Any:
    assert result.error is None, result.error
    return result


def _paths(result: Any) -> list[str]:
    entries = getattr(result, "entries", None) or getattr(result, "files", None) or []
    return sorted(e.path for e in entries)


def test_expired_files_vanish_from_every_tool_before_any_sweep(
    store: Any, clock: ManualClock
) -> None:
    fs = files(store, ttl=DAY)
    _ok(fs.write("/memories/old.md", "remember the tea\n"))
    _ok(fs.write("/memories/archive/older.md", "remember the cake\n"))
    clock.advance(timedelta(hours=12))
    _ok(fs.write("/memories/new.md", "remember the coffee\n"))
    clock.advance(timedelta(hours=13))  # old: 25 h unused; new: 13 h

    assert _paths(fs.ls("/memories")) == ["/memories/new.md"]  # archive/ is gone too
    assert _paths(fs.glob("**/*.md", "/memories")) == ["/memories/new.md"]
    assert [m.path for m in _ok(fs.grep("remember", "/memories")).matches] == ["/memories/new.md"]
    assert fs.read("/memories/old.md").error == errors.not_found("/memories/old.md")
    assert fs.edit("/memories/old.md", "tea", "milk").error == errors.not_found("/memories/old.md")
    assert fs.ls("/memories/archive").error is not None
    assert fs.delete("/memories/old.md").error == errors.not_found("/memories/old.md")
    assert fs.delete("/memories/archive").error == errors.not_found("/memories/archive")
    # Their rows are still there: hidden, not yet deleted.
    assert store.get(NS, "/old.md") is not None
    assert store.get(NS, "/archive/older.md") is not None
    # A backend without a TTL still sees them (the TTL is the route's, not the data's).
    assert _paths(files(store).ls("/memories")) == [
        "/memories/archive/",
        "/memories/new.md",
        "/memories/old.md",
    ]

    report = fs.prune()
    assert [(p.key, p.reason) for p in report.removed] == [
        ("/archive/older.md", "expired"),
        ("/old.md", "expired"),
    ]
    assert (report.kept_files, report.dry_run) == (1, False)
    assert store.get(NS, "/old.md") is None and store.get(NS, "/archive/older.md") is None
    assert fs.read("/memories/new.md").lines == ["remember the coffee"]


def test_writing_an_expired_path_starts_a_new_file(store: Any, clock: ManualClock) -> None:
    fs = files(store, ttl=DAY)
    _ok(fs.write("/memories/a.md", "old\n"))
    clock.advance(2 * DAY)
    _ok(fs.write("/memories/a.md", "new\n"))
    assert fs.read("/memories/a.md").lines == ["new"]
    assert fs.prune().removed == []


def test_an_expired_directory_neither_blocks_a_file_of_its_name_nor_lists(
    store: Any, clock: ManualClock
) -> None:
    """Expired files leave no directory behind: not in the write's directory check, not
    in the directory test ``ls`` and ``read_file`` make."""
    fs = files(store, ttl=DAY)
    _ok(fs.write("/memories/d/old.md", "old\n"))
    clock.advance(2 * DAY)
    assert "not found" in fs.ls("/memories/d").error
    assert "not found" in fs.read("/memories/d").error  # not "is a directory"
    _ok(fs.write("/memories/d", "now a file\n"))
    assert fs.read("/memories/d").lines == ["now a file"]


def test_reads_refresh_the_time_to_live_where_the_store_records_them(
    store: Any, kind: str, clock: ManualClock
) -> None:
    fs = files(store, ttl=DAY)
    _ok(fs.write("/memories/a.md", "tea\n"))
    clock.advance(timedelta(hours=20))
    _ok(fs.read("/memories/a.md"))
    clock.advance(timedelta(hours=20))  # 40 h after the write, 20 h after the read
    visible = fs.read("/memories/a.md").error is None
    assert visible is (kind in TRACKS_READS)
    clock.advance(timedelta(hours=25))
    assert fs.read("/memories/a.md").error is not None


def test_reads_do_not_refresh_when_the_policy_says_so(store: Any, clock: ManualClock) -> None:
    fs = files(store, prune=PrunePolicy(ttl=DAY, refresh_on_read=False))
    _ok(fs.write("/memories/a.md", "tea\n"))
    clock.advance(timedelta(hours=20))
    _ok(fs.read("/memories/a.md"))
    clock.advance(timedelta(hours=5))
    assert fs.read("/memories/a.md").error == errors.not_found("/memories/a.md")


def test_caps_evict_the_least_recently_used_first(store: Any, clock: ManualClock) -> None:
    fs = files(store, prune=PrunePolicy(max_files=3))
    for name in "abcde":
        _ok(fs.write(f"/memories/{name}.md", f"{name}\n"))
        clock.advance(timedelta(minutes=1))
    _ok(fs.edit("/memories/b.md", "b", "bee"))  # b is now the most recently used

    dry = fs.prune(dry_run=True)
    assert [(p.key, p.reason) for p in dry.removed] == [
        ("/a.md", "over max_files"),
        ("/c.md", "over max_files"),
    ]
    assert _paths(fs.ls("/memories")) == [f"/memories/{n}.md" for n in "abcde"]  # dry run

    report = fs.prune()
    assert [p.key for p in report.removed] == ["/a.md", "/c.md"]
    assert _paths(fs.ls("/memories")) == ["/memories/b.md", "/memories/d.md", "/memories/e.md"]
    assert fs.prune().removed == []  # within the cap now


def test_expired_files_go_before_any_eviction_and_bytes_are_capped(
    store: Any, clock: ManualClock
) -> None:
    fs = files(store, prune=PrunePolicy(ttl=DAY, max_bytes=250))
    _ok(fs.write("/memories/stale.md", "s" * 10))
    clock.advance(2 * DAY)
    for name in ("x", "y", "z"):
        _ok(fs.write(f"/memories/{name}.md", name * 100))
        clock.advance(timedelta(minutes=1))
    report = fs.prune()
    assert [(p.key, p.reason, p.size) for p in report.removed] == [
        ("/stale.md", "expired", 10),
        ("/x.md", "over max_bytes", 100),
    ]
    assert (report.kept_files, report.kept_bytes) == (2, 200)
    assert "removed 2 files (1 expired, 1 over max_bytes)" in report.summary()


def test_a_dry_run_lists_and_deletes_nothing(store: Any, clock: ManualClock) -> None:
    fs = files(store, ttl=DAY)
    _ok(fs.write("/memories/a.md", "a\n"))
    clock.advance(2 * DAY)
    report = fs.prune(dry_run=True)
    assert [p.key for p in report.removed] == ["/a.md"]
    assert report.dry_run and "would remove 1 file" in report.summary()
    assert store.get(NS, "/a.md") is not None
    assert files(store).read("/memories/a.md").lines == ["a"]


def test_a_file_changed_after_it_was_chosen_is_kept(store: Any, clock: ManualClock) -> None:
    fs = files(store, prune=PrunePolicy(max_files=0))
    _ok(fs.write("/memories/a.md", "a\n"))
    _ok(fs.write("/memories/b.md", "b\n"))
    clock.advance(timedelta(minutes=1))

    seen: list[list[str]] = []

    def on_batch(keys: list[str]) -> None:
        seen.append(keys)
        if len(seen) == 1:  # after the first batch (/a.md), someone writes /b.md
            _ok(fs.write("/memories/b.md", "b again\n"))

    report = prune_namespace(store, NS, fs.policy, batch_size=1, on_batch=on_batch)
    assert [p.key for p in report.removed] == ["/a.md"]
    assert report.changed_since == ["/b.md"]
    assert fs.read("/memories/b.md").lines == ["b again"]


def test_async_prune_matches_sync(store: Any, clock: ManualClock) -> None:
    import asyncio

    fs = files(store, ttl=DAY)
    _ok(fs.write("/memories/a.md", "a\n"))
    clock.advance(2 * DAY)
    report = asyncio.run(fs.aprune())
    assert [p.key for p in report.removed] == ["/a.md"]
    assert store.get(NS, "/a.md") is None


def test_pruned_files_can_be_restored_from_history(
    make: Callable[[str], Any], clock: ManualClock
) -> None:
    for kind in ("history-memory", "sqlite"):
        store = make(kind)
        assert isinstance(store, SupportsHistory)
        fs = files(store, ttl=DAY)
        _ok(fs.write("/memories/a.md", "precious\n"))
        clock.advance(2 * DAY)
        assert [p.key for p in fs.prune().removed] == ["/a.md"]
        last = store.history(NS, "/a.md")[-1]
        assert (last.op, last.thread_id) == ("delete", PRUNE_AUTHOR.thread_id)
        store.restore(NS, "/a.md", last.number - 1)
        assert fs.read("/memories/a.md").lines == ["precious"]


def test_policies_are_checked() -> None:
    with pytest.raises(ConfigError, match="timedelta"):
        PrunePolicy(ttl=3600)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_files"):
        PrunePolicy(max_files=-1)
    with pytest.raises(ConfigError, match="not both"):
        StoreBackend(store=InMemoryStore(), ttl=DAY, prune=PrunePolicy(ttl=DAY))


def test_choose_documents_the_eviction_order() -> None:
    usage = [
        FileUsage("/b", 10, "2026-01-02T00:00:00.000000+00:00"),
        FileUsage("/a", 10, "2026-01-02T00:00:00.000000+00:00"),
        FileUsage("/old", 10, "2025-01-01T00:00:00.000000+00:00"),
        FileUsage("/undated", 10, ""),
        FileUsage("/new", 10, "2026-01-03T00:00:00.000000+00:00"),
    ]
    with use_clock(ManualClock(datetime(2026, 1, 3, 12, tzinfo=UTC))):
        removed, files_left, bytes_left = choose(usage, PrunePolicy(ttl=30 * DAY, max_files=2))
    # Expired first; then oldest last use, ties by path; an unknown last use counts oldest.
    assert [(p.key, p.reason) for p in removed] == [
        ("/old", "expired"),
        ("/undated", "over max_files"),
        ("/a", "over max_files"),
    ]
    assert (files_left, bytes_left) == (2, 20)


def test_stale_usage_does_not_delete_a_rewritten_file(
    make: Callable[[str], Any], clock: ManualClock
) -> None:
    for kind in ("sqlite", "inmemory"):
        store = make(kind)
        fs = files(store)
        _ok(fs.write("/memories/a.md", "a\n"))
        repo = _repository(store)
        [usage] = repo.file_usage(NS)
        clock.advance(timedelta(seconds=1))
        _ok(fs.write("/memories/a.md", "changed\n"))
        assert repo.file_discard(NS, [usage]) == []
        assert fs.read("/memories/a.md").lines == ["changed"]


def test_reads_count_as_use_for_caps_where_the_store_records_them(
    store: Any, kind: str, clock: ManualClock
) -> None:
    fs = files(store, prune=PrunePolicy(max_files=2))
    for name in "abc":
        _ok(fs.write(f"/memories/{name}.md", f"{name}\n"))
        clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(hours=2))  # reads are recorded at most hourly without a TTL
    _ok(fs.read("/memories/a.md"))
    evicted = [p.key for p in fs.prune().removed]
    assert evicted == (["/b.md"] if kind in TRACKS_READS else ["/a.md"])


def test_a_cancelled_prune_stops_between_batches(store: Any, clock: ManualClock) -> None:
    fs = files(store, ttl=DAY)
    for i in range(5):
        _ok(fs.write(f"/memories/{i}.md", "x"))
    clock.advance(2 * DAY)
    batches: list[list[str]] = []
    report = prune_namespace(
        store,
        NS,
        fs.policy,
        batch_size=2,
        on_batch=batches.append,
        cancelled=lambda: len(batches) >= 1,
    )
    assert [p.key for p in report.removed] == ["/0.md", "/1.md"]
    assert len(files(store).ls("/memories").entries) == 3


def test_langgraph_stores_with_ttl_support_get_the_ttl_with_each_write(
    make: Callable[[str], Any], clock: ManualClock
) -> None:
    import sqlite3

    store = make("langgraph-sqlite")
    assert store.supports_ttl
    _ok(files(store, ttl=DAY).write("/memories/a.md", "a\n"))
    _ok(files(store).write("/memories/b.md", "b\n"))  # no TTL on this backend
    conn = sqlite3.connect(store.conn.execute("PRAGMA database_list").fetchone()[2])
    rows = dict(conn.execute("SELECT key, ttl_minutes FROM store ORDER BY key").fetchall())
    assert rows == {"/a.md": 24 * 60, "/b.md": None}


def test_the_memory_map_does_not_keep_mapped_files_alive(store: Any, clock: ManualClock) -> None:
    from deepmemory.middleware.memory_map import build_map

    fs = files(store, ttl=timedelta(days=7))
    _ok(fs.write("/memories/tea.md", "green tea\n"))
    for _ in range(10):  # an agent run every day: the map reads every mapped file
        clock.advance(DAY)
        build_map(fs, ["/memories"], 1000)
    assert fs.read("/memories/tea.md").error == errors.not_found("/memories/tea.md")
