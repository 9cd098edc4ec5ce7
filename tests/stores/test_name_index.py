"""Globs that name files at any depth are answered from the name index (m004)."""

from __future__ import annotations

from deepmemory.backends import StoreBackend
from deepmemory.backends._match import compile_glob
from deepmemory.stores import SQLiteStore
from deepmemory.stores._search import glob_files


def test_a_name_glob_finds_files_at_any_depth_and_uses_the_name_index(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    backend = StoreBackend(store=store, namespace=("n",))
    files = [(f"/a{i % 7}/b{i % 5}/f{i}.md", b"x") for i in range(300)]
    files += [("/deep/er/still/milestone-1.md", b"m"), ("/milestone-2.md", b"m")]
    files += [("/milestone-3.txt", b"m"), ("/notmilestone-4.md", b"m")]
    backend.upload_files(files)
    found = [f.path for f in backend.glob("**/milestone-*.md").files]
    assert found == ["/deep/er/still/milestone-1.md", "/milestone-2.md"]
    assert [f.path for f in backend.glob("milestone-*", "/deep").files] == [
        "/deep/er/still/milestone-1.md"
    ]

    step = glob_files("sqlite", ("n",), "/", compile_glob("**/milestone-*.md", "/").regex, "")
    assert step is not None
    sql, params = step.query
    conn = store._connection()
    plan = " ".join(str(row) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "deepmemory_items_name" in plan
    store.close()
