"""Benchmark: tens of thousands of concurrent LangGraph store calls from one event loop.

Usage::

    python bench/bench_many_calls.py [--calls 6000,60000] [--engines sqlite,postgres]
                                     [--pg-url URL] [--json PATH]

Each run starts ``calls`` asyncio tasks at once on one store (``SQLiteStore`` in a
temporary directory; ``PostgresStore`` in a schema of its own, with its default pool of
10 connections, dropped at the end), in turn ``aput`` of a new item, ``aget`` of the item
the previous task puts, ``asearch`` with a filter, ``alist_namespaces`` and ``adelete``
of an item loaded before the run; each 600 calls share 10 namespaces of their own, so
every call's answer has the same size at every scale. Every call must succeed (no
``PoolTimeout``) and the items left must be exactly the puts plus the loaded items no
delete took. Each size runs twice: with Python's cyclic garbage collector off during
the calls (our cost) and on (what a program with that many tasks in flight sees; see
``run``). Targets (exit status 1 if any fails): every run completes; with the collector
off, wall time grows at most linearly: time(largest) / time(smallest) <= 1.5 x the
ratio of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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

GROUP, USERS = 600, 10  # each 600 calls share 10 namespaces: every answer's size is fixed
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _namespace(i: int) -> tuple[str, ...]:
    return ("many", f"g{i // GROUP}", f"u{i % USERS}")


async def _one(store: BaseStore, i: int) -> Any:
    ns = _namespace(i)
    match i % 5:
        case 0:
            return await store.aput(ns, f"k{i}", {"i": i})
        case 1:
            return await store.aget(ns, f"k{i - 1}")
        case 2:
            return await store.asearch(ns, filter={"i": i - 2}, limit=5)
        case 3:
            return await store.alist_namespaces(prefix=("many", f"g{i // GROUP}"), limit=100)
        case _:
            return await store.adelete(ns, f"old{i}")


def run(store: BaseStore, calls: int, collect: bool) -> float:
    """Wall seconds for ``calls`` concurrent calls; checks what is left.

    ``collect=False``: Python's cyclic garbage collector is off during the calls. Each
    of its full passes walks every live object, and ``calls`` tasks in flight are
    ``calls`` coroutines, futures and frames, so with it on the time of any program
    holding that many tasks grows faster than linearly, whatever the store does.
    """
    olds = range(4, calls, 5)
    loaded = [PutOp(_namespace(i), f"old{i}", {"i": i}) for i in range(calls)]
    store.batch(loaded)  # deletes take the old{i} with i % 5 == 4; the rest stay

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(_one(store, i) for i in range(calls)))

    collecting = gc.isenabled()
    if not collect:
        gc.collect()
        gc.disable()
    try:
        t0 = time.perf_counter()
        asyncio.run(all_at_once())
        wall = time.perf_counter() - t0
    finally:
        if collecting:
            gc.enable()
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
    results: dict[str, dict[str, float]] = {}
    failed = False
    for engine in args.engines.split(","):
        for collect in (False, True):
            label = f"{engine}, gc {'on' if collect else 'off'}"
            done: dict[int, float] = {}
            for calls in sizes:
                if engine == "sqlite":
                    folder = tempfile.mkdtemp(prefix="deepmemory-many-")
                    store: Any = SQLiteStore(os.path.join(folder, "memory.db"))
                else:
                    schema = f"deepmemory_many_{uuid.uuid4().hex[:8]}"
                    store = PostgresStore(args.pg_url or DEFAULT_PG_URL, schema=schema)
                try:
                    wall = run(store, calls, collect)
                except Exception as exc:
                    print(f"FAIL  {label} {calls:,} calls: {type(exc).__name__}: {exc}")
                    failed = True
                    continue
                finally:
                    store.close()
                    if engine == "postgres":
                        _drop(args.pg_url or DEFAULT_PG_URL, schema)
                done[calls] = wall
                print(
                    f"      {label:18} {calls:>7,} calls {wall:7.2f} s {calls / wall:8,.0f} calls/s"
                )
            results[label] = {str(c): w for c, w in done.items()}
            if len(done) == len(sizes) > 1:
                growth = done[sizes[-1]] / done[sizes[0]]
                limit = 1.5 * sizes[-1] / sizes[0]
                ok = growth <= limit
                if not collect:  # the target: our cost; with gc on, for information
                    failed |= not ok
                verdict = ("PASS" if ok else "FAIL") if not collect else "info"
                print(
                    f"{verdict:5} {label}: wall time x{growth:.1f} for "
                    f"x{sizes[-1] / sizes[0]:g} calls (target <= x{limit:g} with gc off)"
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
