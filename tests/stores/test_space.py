"""The bytes a namespace holds, as size limits read them: a kept count, never a sum of every file.

``LimitsBackend`` checks each write against the namespace's total. Our stores keep that
total in ``deepmemory_space`` (triggers, m014), so the check costs the same at 100 and
at 100,000 files. These tests hold the kept count to the sum of the files' sizes after
every way of changing them, on SQLite and PostgreSQL, with concurrent writers, and show
that a limited write does not sum the files.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from langgraph.store.base import PutOp

from deepmemory.backends import LimitsBackend, StoreBackend
from deepmemory.clock import ManualClock, use_clock
from deepmemory.stores._base import SPACE_FOLD_ROWS
from deepmemory.stores._sql import encode_namespace

NS = ("memories", "alice")
OTHER = ("memories", "bob")


def summed(backend: StoreBackend) -> int:
    """The namespace's bytes, added up from a listing of its files."""
    return sum(info.size or 0 for info in backend.glob("**", "/").files)


def kept(store, namespace=NS) -> int:
    return store.file_space(namespace, [])[0]


def test_the_kept_count_is_the_sum_of_file_sizes_after_every_kind_of_change(store):
    backend = StoreBackend(store=store, namespace=NS)
    bob = StoreBackend(store=store, namespace=OTHER)
    assert bob.write("/theirs.md", "b" * 700).error is None
    changes = [
        lambda: backend.write("/a.md", "hello\n"),
        lambda: backend.write("/notes/b.md", "ünïcode ✓\n" * 3),
        lambda: backend.edit("/a.md", "hello", "hello, world"),  # grows
        lambda: backend.edit("/a.md", "hello, world", "bye"),  # shrinks
        lambda: backend.edit("/a.md", "bye", "eyb"),  # same size
        lambda: backend.upload_files([("/bin/c.bin", bytes(range(256)) * 4)]),
        lambda: backend.move("/notes", "/archive"),  # a directory: keys change
        lambda: backend.move("/a.md", "/archive/a.md"),
        lambda: backend.delete("/archive/b.md"),
        lambda: store.put(NS, "/put.md", {"content": "x" * 50, "encoding": "utf-8"}),
        lambda: store.put(NS, "not-a-file", {"anything": "y" * 500}),  # not counted
        lambda: store.batch(
            [
                PutOp(NS, f"/batch/{i}.md", {"content": "z" * i, "encoding": "utf-8"})
                for i in range(9)
            ]
        ),
        lambda: store.delete(NS, "/put.md"),
        lambda: backend.write("/archive/a.md", ""),
    ]
    for number, change in enumerate(changes):
        result = change()
        assert getattr(result, "error", None) is None, (number, result)
        assert kept(store) == summed(backend), number
    assert kept(store) > 0
    assert kept(store, OTHER) == 700


@pytest.mark.postgres
def test_concurrent_writers_keep_the_count_exact_and_reading_it_folds_their_rows(make_store):
    store = make_store("postgres")
    backend = StoreBackend(store=store, namespace=NS)
    errors: list[object] = []

    def writer(n: int) -> None:
        for i in range(12):
            path = f"/w{n}/{i % 4}.md"
            result = backend.write(path, f"{n}-{i}-" + "x" * (i * 37 % 300))
            if result.error:
                errors.append(result.error)
            if i % 5 == 4 and backend.delete(path).error:
                errors.append(path)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    def rows() -> int:
        with store._connection() as conn:
            found = conn.execute(
                "SELECT count(*) FROM deepmemory_space WHERE namespace = %s",
                (encode_namespace(NS),),
            ).fetchone()
        return int(found[0]) if found else 0

    assert rows() > SPACE_FOLD_ROWS  # a row per writing transaction
    assert kept(store) == summed(backend)
    assert rows() == 1  # folded by that read
    assert kept(store) == summed(backend)


def test_a_limited_write_reads_the_kept_count_and_never_sums_the_files(make_store, tmp_path):
    store = make_store("sqlite")
    limited = LimitsBackend(StoreBackend(store=store, namespace=NS), max_total_bytes=10_000)
    for i in range(20):
        assert limited.write(f"/f{i}.md", "x" * 100).error is None
    statements: list[str] = []
    with store._connection() as conn:
        conn.set_trace_callback(statements.append)
        try:
            assert limited.write("/f0.md", "y" * 200).error is None
            refused = limited.write("/big.md", "z" * 8_500)
        finally:
            conn.set_trace_callback(None)
    assert "10,000-byte limit" in (refused.error or "")
    assert any("deepmemory_space" in s for s in statements)
    assert not [s for s in statements if "sum(size)" in s], statements


def test_expired_files_count_only_until_the_limit_is_near(make_store):
    """The kept count includes expired files not yet pruned; near the limit the visible
    files are summed, so an expired file never blocks a write."""
    store = make_store("sqlite")
    with use_clock(ManualClock(datetime(2026, 3, 1, tzinfo=UTC))) as clock:
        inner = StoreBackend(store=store, namespace=NS, ttl=timedelta(days=1))
        limited = LimitsBackend(inner, max_total_bytes=1_000)
        assert limited.write("/old.md", "o" * 600).error is None
        clock.advance(timedelta(days=2))  # /old.md expires; its row stays until pruned
        statements: list[str] = []
        with store._connection() as conn:
            conn.set_trace_callback(statements.append)
            try:
                assert limited.write("/new.md", "n" * 300).error is None  # 900 kept: no sum
                assert not [s for s in statements if "sum(size)" in s]
                assert limited.write("/newer.md", "m" * 600).error is None  # 1,500 kept
                assert [s for s in statements if "sum(size)" in s]  # 900 visible: summed
            finally:
                conn.set_trace_callback(None)
        refused = limited.write("/newest.md", "q" * 200)
        assert "1,100 bytes" in (refused.error or ""), refused.error
