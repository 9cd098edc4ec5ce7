"""Writes and edits in one statement (``SupportsInPlaceWrites``), and the paths they fall back to.

``StoreBackend`` over our stores writes with ``file_write`` (the directory check is part
of the insert) and edits with ``file_edit`` (the replacement computed in SQL from the
row it changes). Anything the one statement does not handle (a missing or binary
file, ``old_string`` absent or repeated, ``replace_all``, the older list-of-lines
layout) falls back to reading the file and a compare-and-swap, which says why.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from deepmemory import errors
from deepmemory.backends import StoreBackend
from deepmemory.backends.protocol import Author, StoredFile, SupportsInPlaceWrites
from deepmemory.stores import PostgresStore
from deepmemory.stores._base import SQLStore

NS = ("memories", "alice")


def _files(store: SQLStore) -> StoreBackend:
    return StoreBackend(store=store, namespace=NS).mounted("/memories")


def test_our_stores_write_and_edit_in_place(store: SQLStore) -> None:
    assert isinstance(store, SupportsInPlaceWrites)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_file_write_creates_replaces_and_refuses_a_directory(store: SQLStore, mode: str) -> None:
    def write(key: str, text: str) -> int | None:
        file = StoredFile(text, "utf-8", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")
        if mode == "sync":
            return store.file_write(NS, key, file)
        return asyncio.run(store.afile_write(NS, key, file))

    first = write("/a.md", "one\n")
    assert first is not None
    second = write("/a.md", "two\n")
    assert second is not None and second > first
    stored = store.file_get(NS, "/a.md")
    assert stored is not None and stored.content == "two\n"
    assert write("/dir/inner.md", "x") is not None
    assert write("/dir", "would hide /dir/inner.md") is None
    assert store.file_get(NS, "/dir") is None  # nothing written
    assert [f.path for f in store.file_list_dir(NS, "/")] == ["/a.md", "/dir/"]


def test_write_keeps_created_at_of_the_file_it_replaces(store: SQLStore) -> None:
    fs = _files(store)
    assert not fs.write("/memories/a.md", "one\n").error
    created = store.file_get(NS, "/a.md").created_at  # type: ignore[union-attr]
    assert not fs.write("/memories/a.md", "two\n").error
    again = store.file_get(NS, "/a.md")
    assert again is not None and again.created_at == created and again.content == "two\n"


def test_write_onto_a_directory_is_refused_with_a_message(store: SQLStore) -> None:
    fs = _files(store)
    assert not fs.write("/memories/projects/x.md", "x").error
    result = fs.write("/memories/projects", "oops")
    assert result.error == errors.is_directory("/memories/projects", "write_file")
    assert fs.read("/memories/projects/x.md").lines == ["x"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_file_edit_replaces_exactly_one_occurrence(store: SQLStore, mode: str) -> None:
    store.file_put(NS, "/n.md", StoredFile("tea\ncake\n"), expected_version=None)
    store.file_put(NS, "/twice.md", StoredFile("tea tea\n"), expected_version=None)
    store.file_put(NS, "/bin", StoredFile("AAEC", "base64"), expected_version=None)
    before = {k: store.file_get(NS, k) for k in ("/n.md", "/twice.md", "/bin")}

    def edit(key: str, old: str, new: str) -> int | None:
        args = (NS, key, old, new, "2026-03-04T05:06:07+00:00")
        if mode == "sync":
            return store.file_edit(*args)
        return asyncio.run(store.afile_edit(*args))

    # Nothing changes when the statement cannot apply the edit.
    assert edit("/missing.md", "tea", "coffee") is None
    assert edit("/n.md", "coffee", "milk") is None
    assert edit("/twice.md", "tea", "coffee") is None
    assert edit("/bin", "AA", "BB") is None
    assert {k: store.file_get(NS, k) for k in before} == before

    version = edit("/n.md", "tea", "green tea é")
    assert version is not None and version > before["/n.md"].version  # type: ignore[union-attr]
    after = store.file_get(NS, "/n.md")
    assert after is not None
    assert (after.content, after.modified_at) == (
        "green tea é\ncake\n",
        "2026-03-04T05:06:07+00:00",
    )
    assert after.created_at == before["/n.md"].created_at  # type: ignore[union-attr]
    # The size column (what ls shows without reading content) follows, in UTF-8 bytes.
    [info] = [f for f in store.file_list_dir(NS, "/") if f.path == "/n.md"]
    assert info.size == len("green tea é\ncake\n".encode())


def test_edit_in_place_records_the_edited_text_with_its_author(store: SQLStore) -> None:
    store.file_put(NS, "/n.md", StoredFile("tea\n"), expected_version=None)
    author = Author(thread_id="t-9", user="alice")
    assert store.file_edit(NS, "/n.md", "tea", "coffee", "now", author=author) is not None
    last = store.history(NS, "/n.md")[-1]
    assert (last.op, last.thread_id, last.user, last.size) == ("edit", "t-9", "alice", 7)
    revision = store.revision(NS, "/n.md", last.number)
    assert revision is not None and revision.content == "coffee\n"


def test_edits_the_statement_cannot_make_still_work_through_the_fallback(store: SQLStore) -> None:
    fs = _files(store)
    assert not fs.write("/memories/n.md", "tea tea\n").error
    twice = fs.edit("/memories/n.md", "tea", "coffee")
    assert twice.error == errors.string_not_unique("/memories/n.md", 2)
    result = fs.edit("/memories/n.md", "tea", "coffee", replace_all=True)
    assert (result.error, result.occurrences) == (None, 2)
    assert fs.read("/memories/n.md").lines == ["coffee coffee"]
    missing = fs.edit("/memories/n.md", "tea", "x")
    assert missing.error == errors.string_not_found("/memories/n.md", "tea")
    # The older layout, content as a list of lines, is edited through the fallback.
    store.put(NS, "/old.md", {"content": ["a", "b"], "encoding": "utf-8"})
    assert not fs.edit("/memories/old.md", "b", "c").error
    assert fs.read("/memories/old.md").lines == ["a", "c"]


def _interfering(store: SQLStore, change: Callable[[str], str]) -> SQLStore:
    """``store`` whose next ``file_get`` is followed by another writer's ``change``."""
    armed = [True]
    plain_get = store.file_get

    def file_get(namespace, key):  # type: ignore[no-untyped-def]
        file = plain_get(namespace, key)
        if armed[0] and file is not None:
            armed[0] = False
            store.file_put(namespace, key, StoredFile(change(file.content)), expected_version=None)
        return file

    store.file_get = file_get  # type: ignore[method-assign]
    return store


def test_a_compare_and_swap_that_loses_reapplies_on_the_new_text(store: SQLStore) -> None:
    fs = _files(_interfering(store, lambda text: text + "added by another thread\n"))
    assert not fs.write("/memories/n.md", "tea tea\n").error
    result = fs.edit("/memories/n.md", "tea", "coffee", replace_all=True)
    assert result.error is None
    assert fs.read("/memories/n.md").lines == ["coffee coffee", "added by another thread"]


def test_a_compare_and_swap_whose_string_vanished_reports_a_conflict(store: SQLStore) -> None:
    fs = _files(_interfering(store, lambda text: "rewritten by another thread\n"))
    assert not fs.write("/memories/n.md", "tea tea\n").error
    result = fs.edit("/memories/n.md", "tea", "coffee", replace_all=True)
    assert result.error == errors.conflict("/memories/n.md")
    assert fs.read("/memories/n.md").lines == ["rewritten by another thread"]


def test_threads_editing_in_place_lose_nothing(store: SQLStore) -> None:
    fs = _files(store)
    assert not fs.write("/memories/log.md", "<END>").error
    failures: list[str] = []

    def append(worker: int) -> None:
        for n in range(40):
            result = fs.edit("/memories/log.md", "<END>", f"w{worker}-{n}\n<END>")
            if result.error:
                failures.append(result.error)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    lines = fs.read("/memories/log.md", limit=1000).lines
    assert len(lines) == 161
    for w in range(4):
        assert [line for line in lines if line.startswith(f"w{w}-")] == [
            f"w{w}-{n}" for n in range(40)
        ]


@pytest.mark.postgres
def test_postgres_searches_are_planned_per_call_and_writes_reuse_their_plan(
    make_store: Callable[[str], SQLStore],
) -> None:
    """A cached generic plan cannot use the trigram index for ``LIKE $n``: searches opt out.

    psycopg prepares a statement server-side from its 5th run on a connection; writes
    and lookups should be (their plans do not depend on the values), grep, glob and ls
    never (each call is planned with its pattern).
    """
    store = make_store("postgres")
    assert isinstance(store, PostgresStore)
    fs = _files(store)
    for i in range(5):
        assert not fs.write(f"/memories/d/{i}.md", f"needle {i}\n").error
    pool = store._sync_pool()
    with pool.connection() as conn:  # hold the pool's one idle connection: run on it
        from deepmemory.stores import _search
        from deepmemory.stores.postgres import _run

        grep = _search.grep_files("postgres", NS, "/", "needle", None, "")
        glob = _search.glob_files("postgres", NS, "/", r"(?:.*/)?[^/]*\.md", "")
        write = store._write(NS, "/d/0.md", StoredFile("needle 0\n"), None, "write")
        assert grep is not None and glob is not None
        for _ in range(8):
            assert len(_run(conn, grep)) == 5
            assert len(_run(conn, glob)) == 5
            assert _run(conn, write) is not None
        prepared = [row[0] for row in conn.execute("SELECT statement FROM pg_prepared_statements")]
    assert not any("LIKE" in text or " ~ " in text for text in prepared), prepared
    assert any("INSERT INTO deepmemory_items" in text for text in prepared), prepared


def test_uploads_holding_nul_are_binary(store: SQLStore) -> None:
    """Databases cannot keep NUL in text: such bytes are stored (and reported) as binary."""
    fs = _files(store)
    [up] = fs.upload_files([("/memories/nul.txt", b"header\x00tail\n")])
    assert up.error is None
    assert fs.read("/memories/nul.txt").binary
    assert "binary" in (fs.edit("/memories/nul.txt", "header", "HEADER").error or "")
    [down] = fs.download_files(["/memories/nul.txt"])
    assert down.content == b"header\x00tail\n"


def test_sqlite_text_with_nul_put_by_langgraph_reads_and_edits_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite's JSON functions stop at an escaped NUL: such values take the Python path."""
    from deepmemory.stores import SQLiteStore

    with SQLiteStore(tmp_path / "m.db") as store:
        store.put(NS, "/p.txt", {"content": "X\x00X tail\n", "encoding": "utf-8"})
        fs = _files(store)
        assert fs.read("/memories/p.txt").lines == ["X\x00X tail"]
        assert fs.edit("/memories/p.txt", "X", "Y").error == errors.string_not_unique(
            "/memories/p.txt", 2
        )
        assert not fs.edit("/memories/p.txt", "tail", "end").error
        assert fs.read("/memories/p.txt").lines == ["X\x00X end"]


def test_a_view_with_expiry_runs_on_its_stores_connections(
    make_store: Callable[[str], SQLStore], store_kind: str
) -> None:
    from datetime import timedelta

    store = make_store(store_kind)
    fs = StoreBackend(store=store, namespace=NS, ttl=timedelta(days=1)).mounted("/memories")
    for i in range(5):
        assert not fs.write(f"/memories/{i}.md", "x").error
        assert fs.read(f"/memories/{i}.md").lines == ["x"]
    if isinstance(store, PostgresStore):
        assert store._pool is not None  # the views used the store's own pool
        assert store._pool.get_stats()["pool_size"] <= store.max_connections


def test_sqlite_reads_with_a_ttl_do_not_wait_for_the_write_lock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3
    from datetime import timedelta

    from deepmemory.stores import SQLiteStore

    with SQLiteStore(tmp_path / "m.db", timeout=0.2) as store:
        fs = StoreBackend(store=store, namespace=NS, ttl=timedelta(days=1)).mounted("/memories")
        assert not fs.write("/memories/a.md", "a\n").error
        other = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            assert fs.read("/memories/a.md").lines == ["a"]  # just written: nothing to record
        finally:
            other.execute("ROLLBACK")
            other.close()


def test_a_mounted_backend_refuses_paths_outside_its_mount(store: SQLStore) -> None:
    """Used directly (not through a CompositeBackend route), a foreign path is an error."""
    fs = _files(store)
    expected = errors.outside_mount("/elsewhere/x.md", "/memories")
    assert fs.write("/elsewhere/x.md", "hi").error == expected
    assert fs.read("/elsewhere/x.md").error == expected
    assert fs.edit("/elsewhere/x.md", "a", "b").error == expected
    assert fs.delete("/elsewhere/x.md").error == expected
    [up] = fs.upload_files([("/elsewhere/x.md", b"hi")])
    assert up.error == expected
    assert store.file_usage(NS) == []  # nothing stored under a stray key
