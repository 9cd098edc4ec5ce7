"""Globs read what their answer needs, and the database matches the pattern exactly."""

from __future__ import annotations

import re

import pytest

from deepmemory.backends import StoreBackend
from deepmemory.backends._match import compile_glob
from deepmemory.stores import SQLiteStore
from deepmemory.stores._base import SQLStore
from deepmemory.stores._search import glob_files

NS = ("globs",)
HOT = [f"/hot/f1{i}.md" for i in range(10)] + [f"/hot/f1{i:02d}.md" for i in range(20)]
COLD = [f"/cold/d{i % 7}/f1{i:06d}.md" for i in range(300)]
ODD = ["/hot/f1x.txt", "/hot/sub/f15.md", "/-.txt", "/a.txt", "/B.txt", "/notes/[x].md"]
ODD += ["/notes/a*b.md", "/notes/q?.md", "/caf\u00e9.md", "/deep/er/still/f17.md", "/f19.md"]
PATHS = HOT + COLD + ODD
PATTERNS = [
    ("**/f1?.md", "/"),
    ("f1?.md", "/hot"),
    ("f1?.md", "/"),
    ("*.md", "/hot"),
    ("**/*.md", "/notes"),
    ("**", "/deep"),
    ("hot/f1?.md", "/"),
    ("hot/**/f1?.md", "/"),
    ("**/sub/*.md", "/"),
    ("cold/d3/*", "/"),
    ("{a,B}.txt", "/"),
    ("[!-x]*.txt", "/"),
    ("[[]x].md", "/notes"),
    ("a[*]b.md", "/notes"),
    ("q[?].md", "/notes"),
    ("caf?.md", "/"),
    ("**/f1[0-3].md", "/"),
    ("*/**/f1?.md", "/"),
    ("f1[!0-8]*", "/hot"),
    ("**/nothing-*.md", "/"),
]


@pytest.fixture
def memory(store: SQLStore) -> StoreBackend:
    backend = StoreBackend(store=store, namespace=NS)
    backend.upload_files([(p, b"x") for p in PATHS])
    return backend


def _expected(pattern: str, path: str) -> list[str]:
    query = compile_glob(pattern, path)
    base = query.base.rstrip("/") + "/"
    return sorted(
        p for p in PATHS if p.startswith(base) and re.fullmatch(query.regex, p[len(base) :])
    )


@pytest.mark.parametrize(("pattern", "path"), PATTERNS)
def test_globs_answer_exactly_what_the_pattern_means(memory, pattern, path):
    assert [f.path for f in memory.glob(pattern, path).files] == _expected(pattern, path)


def _plan(store: SQLiteStore, pattern: str, path: str) -> tuple[str, str]:
    query = compile_glob(pattern, path)
    step = glob_files("sqlite", NS, query.base, query.regex, "")
    assert step is not None
    sql, params = step.query
    plan = " ".join(
        str(tuple(row)) for row in store._connection().execute("EXPLAIN QUERY PLAN " + sql, params)
    )
    return sql, plan


def test_sqlite_reads_the_directory_or_the_names_the_pattern_can_match(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    StoreBackend(store=store, namespace=NS).upload_files([(p, b"x") for p in PATHS])
    # A directory's glob reads that directory's key range, not every "f1" name.
    sql, plan = _plan(store, "f1?.md", "/hot")
    assert "sqlite_autoindex_deepmemory_items_1 (namespace=? AND key>? AND key<?)" in plan
    assert "deepmemory_items_name" not in plan
    # Over the whole memory: six-character names from "f1" only.
    sql, plan = _plan(store, "**/f1?.md", "/")
    assert "INDEX deepmemory_items_name_length (namespace=? AND <expr>=? AND" in plan
    # A name without one length: names from "milestone-".
    sql, plan = _plan(store, "**/milestone-*.md", "/")
    assert "INDEX deepmemory_items_name (namespace=? AND <expr>>? AND <expr><?)" in plan
    # The pattern is matched by GLOB in SQLite, not by our Python matcher per row.
    # Outside what GLOB can say exactly: '-' first in a negated class, '*' before '**'.
    for pattern, path in PATTERNS:
        if pattern not in ("[!-x]*.txt", "*/**/f1?.md"):
            assert "regexp(" not in _plan(store, pattern, path)[0], pattern
    store.close()


@pytest.mark.postgres
def test_postgres_reads_only_the_names_of_the_patterns_length(make_store):
    store = make_store("postgres")
    backend = StoreBackend(store=store, namespace=NS)
    backend.upload_files(
        [(f"/cold/d{i % 7}/f1{i:06d}.md", b"x") for i in range(3000)] + [(p, b"x") for p in HOT]
    )
    query = compile_glob("**/f1?.md", "/")
    step = glob_files("postgres", NS, query.base, query.regex, "")
    assert step is not None
    sql, params = step.query
    with store._sync_pool().connection() as conn:
        conn.execute(f'ANALYZE "{store.schema}".deepmemory_items')
        plan = " ".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
    assert "deepmemory_items_name_length" in plan and "length(name) = " in plan
    assert [f.path for f in backend.glob("**/f1?.md").files] == HOT[:10]
