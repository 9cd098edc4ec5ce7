"""A move on our stores: one transaction, recorded in history, safe against concurrent
writers, with the semantic index and expiry following the files."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from deepmemory.backends import StoreBackend
from deepmemory.backends.protocol import Author, Expiry, StoredFile
from deepmemory.clock import ManualClock, use_clock
from deepmemory.stores import SQLiteStore
from deepmemory.stores._base import SQLStore
from deepmemory.stores.migrations import MIGRATIONS, migrate_sqlite
from tests.stores.test_semantic_index import DIMS, Letters

NS = ("memories", "alice")
ALICE = Author(thread_id="t-1", user="alice")


def test_a_move_is_recorded_at_both_paths_and_the_old_content_stays_restorable(
    store: SQLStore,
) -> None:
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/a.md", "v1\n")
    backend.edit("/a.md", "v1", "v2")
    moved = store.file_move(NS, "/a.md", "/b.md", author=ALICE)
    assert moved == [("/a.md", "/b.md")]
    old, new = store.history(NS, "/a.md"), store.history(NS, "/b.md")
    assert [r.op for r in old] == ["write", "edit", "move"] and old[-1].size is None
    assert [(r.op, r.thread_id, r.user) for r in new] == [("move", "t-1", "alice")]
    assert store.revision(NS, "/b.md", new[0].number).content == "v2\n"
    assert store.revision(NS, "/a.md", old[0].number).content == "v1\n"
    assert backend.read("/b.md").lines == ["v2"]


def test_a_directory_moves_in_one_transaction_and_keeps_times(store: SQLStore) -> None:
    for i in range(50):
        store.file_put(
            NS,
            f"/d/{i:02d}.md",
            StoredFile(f"n{i}\n", "utf-8", "2020-01-01", "2021-01-01"),
            expected_version=None,
        )
    before = {k: f for k in [f"/d/{i:02d}.md" for i in range(50)] if (f := store.file_get(NS, k))}
    assert store.file_move(NS, "/d", "/e/f") == sorted((k, "/e/f" + k[2:]) for k in before)
    assert store.file_glob(NS, "/d", ".*") == []
    for key, file in before.items():
        moved = store.file_get(NS, "/e/f" + key[2:])
        assert moved is not None and moved.content == file.content
        assert (moved.created_at, moved.modified_at) == ("2020-01-01", "2021-01-01")
        assert moved.version != file.version  # a compare-and-swap against the old fails
    assert [e.path for e in store.file_list_dir(NS, "/e")] == ["/e/f/"]


def test_a_move_onto_a_taken_path_moves_nothing(store: SQLStore) -> None:
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/d/a.md", "a")
    backend.write("/d/b.md", "b")
    backend.write("/taken/x.md", "x")
    assert store.file_move(NS, "/d", "/taken") is None
    assert store.file_move(NS, "/ghost", "/new") == []
    assert sorted(f.path for f in store.file_glob(NS, "/", ".*")) == [
        "/d/a.md",
        "/d/b.md",
        "/taken/x.md",
    ]


def test_concurrent_edits_and_a_move_lose_no_edit(store: SQLStore) -> None:
    """Every edit reported done is in the moved file; the others say why they failed."""
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/log.md", "".join(f"slot-{i}: todo\n" for i in range(200)))
    done: list[int] = []
    failed: list[str] = []

    def editor(start: int) -> None:
        for i in range(start, 200, 4):
            result = backend.edit("/log.md", f"slot-{i}: todo", f"slot-{i}: DONE", replace_all=True)
            if result.error is None:
                done.append(i)
            else:
                failed.append(result.error)

    threads = [threading.Thread(target=editor, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    moved = backend.move("/log.md", "/archive/log.md")
    for thread in threads:
        thread.join()
    assert moved.error is None
    text = "\n".join(backend.read("/archive/log.md", limit=1000).lines)
    assert sorted(done) == sorted(
        int(line.split("-")[1].split(":")[0]) for line in text.splitlines() if "DONE" in line
    )
    assert all("not found" in error for error in failed)
    assert len(done) + len(failed) == 200


def test_racing_moves_to_one_destination_let_exactly_one_win(store: SQLStore) -> None:
    backend = StoreBackend(store=store, namespace=NS)
    for i in range(8):
        backend.write(f"/src{i}.md", f"{i}")
    results: list[str | None] = []
    barrier = threading.Barrier(8)

    def mover(i: int) -> None:
        barrier.wait()
        results.append(backend.move(f"/src{i}.md", "/winner.md").error)

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 1
    assert all(e is None or "already exists" in e for e in results)
    left = sorted(f.path for f in store.file_glob(NS, "/", ".*"))
    assert len(left) == 8 and "/winner.md" in left


def test_async_moves_answer_as_sync_ones(store: SQLStore) -> None:
    import asyncio

    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/a.md", "a")
    backend.write("/b.md", "b")

    async def run() -> tuple[object, object, object]:
        ok = await backend.amove("/a.md", "/c/a.md")
        taken = await backend.amove("/b.md", "/c/a.md")
        missing = await backend.amove("/a.md", "/z.md")
        return ok, taken, missing

    ok, taken, missing = asyncio.run(run())
    assert ok.error is None and ok.moved == [("/a.md", "/c/a.md")]  # type: ignore[attr-defined]
    assert "already exists" in taken.error  # type: ignore[attr-defined]
    assert "not found" in missing.error  # type: ignore[attr-defined]


def test_search_by_meaning_finds_a_moved_item_under_its_new_key(
    make_store: Callable[..., SQLStore], store_kind: str
) -> None:
    store = make_store(store_kind, index={"dims": DIMS, "embed": Letters(), "fields": ["content"]})
    store.put(NS, "/notes/apple.md", {"content": "apple pie", "encoding": "utf-8"})
    store.put(NS, "/notes/zebra.md", {"content": "zebra crossing", "encoding": "utf-8"})
    assert store.file_move(NS, "/notes", "/kept") is not None
    found = store.search(NS, query="apple pie", limit=1)
    assert [(item.key, item.score is not None) for item in found] == [("/kept/apple.md", True)]


def test_an_expired_file_is_not_in_a_moves_way(store: SQLStore) -> None:
    clock = ManualClock()
    with use_clock(clock):
        store.file_put(NS, "/old.md", StoredFile("stale"), expected_version=None)
        clock.advance(timedelta(days=40))
        store.file_put(NS, "/new.md", StoredFile("fresh"), expected_version=None)
        view = store.with_expiry(Expiry(timedelta(days=30)))
        assert view.file_get(NS, "/old.md") is None
        assert view.file_move(NS, "/new.md", "/old.md") == [("/new.md", "/old.md")]
        assert view.file_get(NS, "/old.md").content == "fresh"  # type: ignore[union-attr]


def test_a_database_from_before_moves_records_them_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate_sqlite(conn, until="m010_vectors")
    conn.close()
    store = SQLiteStore(path)
    try:
        backend = StoreBackend(store=store, namespace=NS)
        backend.write("/a.md", "a")
        assert backend.move("/a.md", "/b.md").error is None
        assert [r.op for r in store.history(NS, "/b.md")] == ["move"]
        assert "m011_move_revisions" in [m.name for m in MIGRATIONS]
    finally:
        store.close()
