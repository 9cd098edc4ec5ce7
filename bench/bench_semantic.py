"""Benchmark: semantic search and indexed puts on our stores, beside LangGraph's InMemoryStore.

Usage::

    python bench/bench_semantic.py [--sizes 1000,10000,100000] [--dims 256]
                                   [--engines sqlite,postgres,pgvector,inmemory]
                                   [--pg-url URL] [--reps 5] [--json PATH]

Every store gets the same ``index`` config (``dims``, ``fields=["text"]``, cosine) and
the same embedder: a deterministic vector per text, computed once before the timings
start and looked up in a dict, so the embedder costs nothing and only the stores are
measured. Engines: ``SQLiteStore`` (exact search in the database), ``PostgresStore``
on ``--pg-url`` (exact; that server has no pgvector), ``PostgresStore`` on a pgvector
server started by ``pgserver`` (HNSW, approximate), and LangGraph's ``InMemoryStore``
(exact, in Python). At each size one namespace holds that many items (loaded in
batches of 500), then:

* ``search``: median wall time of ``--reps`` searches (``limit=10``) for texts of
  items in the store, after one warm-up; for the approximate engine also its recall
  against the exact top 10;
* ``put``: median time of a single indexed ``put`` (a new item) at that size.

No targets: the numbers are for the README's table (``bench/README.md``, "Semantic
search"); the 60,000-call async run is ``bench/bench_many_calls.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from deepmemory.stores import PostgresStore, SQLiteStore

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
NS = ("bench", "semantic")
BATCH = 500


class Vectors:
    """Precomputed vectors: the embedder looks texts up, costing next to nothing."""

    def __init__(self, dims: int) -> None:
        self.dims, self.table = dims, {}

    def add(self, text: str) -> None:
        rng = random.Random(zlib.crc32(text.encode()))
        self.table[text] = [rng.uniform(-1, 1) for _ in range(self.dims)]

    def __call__(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]


def text(i: int) -> str:
    return f"item {i}"


@contextmanager
def open_store(engine: str, index: dict[str, Any], pg_url: str) -> Iterator[BaseStore]:
    if engine == "inmemory":
        yield InMemoryStore(index=index)  # type: ignore[arg-type]
    elif engine == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            store = SQLiteStore(Path(d) / "bench.db", index=index)  # type: ignore[arg-type]
            try:
                yield store
            finally:
                store.close()
    elif engine in ("postgres", "pgvector"):
        server = None
        url = pg_url
        if engine == "pgvector":
            import pgserver

            server = pgserver.get_server(tempfile.mkdtemp(), cleanup_mode="stop")
            url = server.get_uri()
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        store = PostgresStore(url, schema=schema, index=index)  # type: ignore[arg-type]
        try:
            yield store
        finally:
            store.close()
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            if server is not None:
                server.cleanup()
    else:
        raise SystemExit(f"unknown engine {engine!r}")


def median_ms(call: Callable[[], Any], reps: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def searcher(store: BaseStore, queries: list[str]) -> Callable[[], Any]:
    """Each call searches for the next query (round and round)."""
    it = iter(queries * 2)
    return lambda: store.search(NS, query=next(it), limit=10)


def putter(store: BaseStore, vectors: Vectors, start: int) -> Callable[[], None]:
    """Each call puts a new item (its vector made beforehand, outside the timing)."""
    for n in range(start, start + 100):
        vectors.add(text(n))
    numbers = iter(range(start, start + 100))

    def put() -> None:
        n = next(numbers)
        store.put(NS, f"new{n}", {"text": text(n)})

    return put


def run_engine(
    engine: str, sizes: list[int], vectors: Vectors, args: argparse.Namespace
) -> list[dict[str, Any]]:
    index = {"dims": args.dims, "embed": vectors, "fields": ["text"]}
    rows = []
    with open_store(engine, index, args.pg_url) as store:
        loaded = 0
        for size in sizes:
            t0 = time.perf_counter()
            for start in range(loaded, size, BATCH):
                ops = [
                    PutOp(NS, f"k{i}", {"text": text(i)})
                    for i in range(start, min(size, start + BATCH))
                ]
                store.batch(ops)
            load_s = time.perf_counter() - t0
            loaded = size
            if engine in ("postgres", "pgvector"):
                with store._connection() as conn:  # type: ignore[attr-defined]
                    conn.execute("ANALYZE")
            queries = [text(random.Random(q).randrange(size)) for q in range(args.reps + 1)]
            search_ms = median_ms(searcher(store, queries), args.reps)
            recall = None
            if engine == "pgvector":
                exact = PostgresStore(
                    store.connection_string,  # type: ignore[attr-defined]
                    schema=store.schema,  # type: ignore[attr-defined]
                    index=index,  # type: ignore[arg-type]
                    ann=False,
                )
                try:
                    hits = []
                    for q in queries[:3]:
                        want = {i.key for i in exact.search(NS, query=q, limit=10)}
                        got = {i.key for i in store.search(NS, query=q, limit=10)}
                        hits.append(len(want & got) / len(want))
                    recall = statistics.mean(hits)
                finally:
                    exact.close()
            put_ms = median_ms(putter(store, vectors, 10**9 + size), args.reps)
            row = {
                "engine": engine,
                "items": size,
                "search_ms": round(search_ms, 2),
                "put_ms": round(put_ms, 2),
                "load_s": round(load_s, 1),
                "recall@10": None if recall is None else round(recall, 2),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ["engine", "items", "search ms (median)", "put ms (median)", "recall@10", "load s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        recall = "exact" if r["recall@10"] is None else f"{r['recall@10']:.2f}"
        lines.append(
            f"| {r['engine']} | {r['items']:,} | {r['search_ms']:.2f} | {r['put_ms']:.2f} "
            f"| {recall} | {r['load_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--dims", type=int, default=256)
    p.add_argument("--engines", default="sqlite,postgres,pgvector,inmemory")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    p.add_argument("--reps", type=int, default=5, help="timed calls per measure (< 99)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    vectors = Vectors(args.dims)
    for i in range(sizes[-1]):
        vectors.add(text(i))
    rows = []
    for engine in args.engines.split(","):
        rows += run_engine(engine.strip(), sizes, vectors, args)
    print()
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
