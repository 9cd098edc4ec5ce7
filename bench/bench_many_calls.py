"""Benchmark: tens of thousands of concurrent LangGraph store calls from one event loop.

Usage::

    python bench/bench_many_calls.py [--calls 6000,60000] [--engines sqlite,postgres]
                                     [--pg-url URL] [--json PATH]

Each run starts ``calls`` asyncio tasks at once on one store (``SQLiteStore`` in a
temporary directory; ``PostgresStore`` in a schema of its own, with its default pool of
10 connections, dropped at the end), in turn ``aput`` of a new item, ``aget`` of the item
the previous task puts, ``asearch`` with a filter, ``alist_namespaces`` and ``adelete``
of an item loaded before the run, over 50 namespaces. Every call must succeed (no
``PoolTimeout``) and the items left must be exactly the puts plus the loaded items no
delete took. Targets (exit status 1 if any fails): every run completes, and wall time
grows at most linearly: time(largest) / time(smallest) <= 1.5 x calls ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore, PutOp

from deepmemory.stores import PostgresStore, SQLiteStore

NAMESPACES = 50
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _one(store: BaseStore, i: int) -> Any:
    ns = ("many", f"u{i % NAMESPACES}")
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
            return await store.adelete(ns, f"old{i}")


def run(store: BaseStore, calls: int) -> float:
    """Wall seconds for ``calls`` concurrent calls; checks what is left."""
    olds = range(4, calls, 5)
    loaded = [PutOp(("many", f"u{i % NAMESPACES}"), f"old{i}", {"i": i}) for i in range(calls)]
    store.batch(loaded)  # deletes take the old{i} with i % 5 == 4; the rest stay

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(_one(store, i) for i in range(calls)))

    t0 = time.perf_counter()
    asyncio.run(all_at_once())
    wall = time.perf_counter() - t0
    left = {item.key for item in store.search(("many",), limit=10 * calls)}
    expected = {f"k{i}" for i in range(0, calls, 5)}
    expected |= {f"old{i}" for i in range(calls)} - {f"old{i}" for i in olds}
    if left != expected:
        raise AssertionError(f"{len(left ^ expected)} items differ from what the calls left")
    return wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", default="6000,60000", help="concurrent calls per run")
    p.add_argument("--engines", default="sqlite,postgres")
    p.add_argument("--pg-url", default=os.environ.get("DEEPMEMORY_BENCH_POSTGRES_URL"))
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args()
    sizes = sorted(int(c) for c in args.calls.split(","))
    results: dict[str, dict[int, float]] = {}
    failed = False
    for engine in args.engines.split(","):
        results[engine] = {}
        for calls in sizes:
            if engine == "sqlite":
                folder = tempfile.mkdtemp(prefix="deepmemory-many-")
                store: Any = SQLiteStore(os.path.join(folder, "memory.db"))
            else:
                schema = f"deepmemory_many_{uuid.uuid4().hex[:8]}"
                store = PostgresStore(args.pg_url or DEFAULT_PG_URL, schema=schema)
            try:
                wall = run(store, calls)
            except Exception as exc:
                print(f"FAIL  {engine} {calls:,} calls: {type(exc).__name__}: {exc}")
                failed = True
                continue
            finally:
                store.close()
                if engine == "postgres":
                    _drop(args.pg_url or DEFAULT_PG_URL, schema)
            results[engine][calls] = wall
            print(
                f"      {engine:8} {calls:>7,} calls  {wall:7.2f} s  {calls / wall:9,.0f} calls/s"
            )
        done = results[engine]
        if len(done) == len(sizes) > 1:
            growth = done[sizes[-1]] / done[sizes[0]]
            limit = 1.5 * sizes[-1] / sizes[0]
            ok = growth <= limit
            failed |= not ok
            print(
                f"{'PASS' if ok else 'FAIL'}  {engine} wall time x{growth:.1f} for "
                f"x{sizes[-1] / sizes[0]:g} calls (target <= x{limit:g})"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


def _drop(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    sys.exit(main())
