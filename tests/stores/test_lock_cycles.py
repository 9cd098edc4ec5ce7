"""Many concurrent LangGraph calls with TTLs on PostgreSQL: no deadlock at all.

LangGraph's own 60,000-call async test (puts, TTL-refreshing gets and searches, list
namespaces and deletes on a few hundred keys, with a sweeper) deadlocked our store:
deleting transactions waited on one row counting a namespace's deletes, refreshing
reads batched in one transaction waited on rows in no fixed order, and the sweeper
too. Each deadlock costs a second of the server's detection and a rerun. The server
counts deadlocks per database; this workload must leave that count where it was.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import psycopg
import pytest

from deepmemory.stores._base import SQLStore


def deadlocks(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        conn.execute("SELECT pg_stat_clear_snapshot()")
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
def test_concurrent_calls_with_ttl_refresh_deletes_and_sweeps_never_deadlock(
    make_store: Callable[..., SQLStore], pg_url: str
) -> None:
    store = make_store(
        "postgres", ttl={"default_ttl": 5, "refresh_on_read": True, "sweep_interval_minutes": 1}
    )
    rng = random.Random(7)
    namespaces = [("test", "a"), ("test", "b")]
    keys = [f"key{i}" for i in range(100)]

    async def run() -> list[object]:
        calls = []
        for i in range(3000):
            ns, key = rng.choice(namespaces), rng.choice(keys)
            kind = i % 6
            if kind in (0, 1):
                calls.append(store.aput(ns, key, {"n": i}))
            elif kind == 2:
                calls.append(store.aget(ns, key))
            elif kind == 3:
                calls.append(store.asearch(("test",), limit=20))
            elif kind == 4:
                calls.append(store.alist_namespaces(prefix=("test",)))
            else:
                calls.append(store.adelete(ns, key))
            if i % 1000 == 0:
                calls.append(store.asweep_ttl())
        return await asyncio.gather(*calls, return_exceptions=True)

    before = deadlocks(pg_url)
    results = asyncio.run(run())
    assert [r for r in results if isinstance(r, BaseException)] == []
    # The statistics reach the view within a moment; force their flush by reading again.
    after = deadlocks(pg_url)
    assert after == before, f"{after - before} deadlocks"


@pytest.mark.postgres
def test_the_sweeper_leaves_an_item_being_changed_for_its_next_sweep(
    make_store: Callable[..., SQLStore], pg_url: str
) -> None:
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock

    store = make_store("postgres", ttl={"default_ttl": 1})
    with use_clock(ManualClock()) as clock:
        store.put(("s",), "busy", {"v": 1})
        store.put(("s",), "idle", {"v": 1})
        clock.advance(timedelta(minutes=2))
        with psycopg.connect(pg_url) as conn:  # a writer holding the row, uncommitted
            conn.execute(f"SET search_path TO {store.schema}")
            conn.execute("SELECT 1 FROM deepmemory_items WHERE key = 'busy' FOR UPDATE")
            assert store.sweep_ttl() == 1  # without waiting for that writer
            conn.rollback()
        assert store.sweep_ttl() == 1
    assert store.search(("s",)) == []
