"""Our stores are LangGraph stores: every BaseStore operation, sync and async."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time

import pytest
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore


def test_put_then_get_returns_the_value_and_timestamps(store):
    store.put(("users", "alice"), "prefs", {"theme": "dark", "n": 1})
    item = store.get(("users", "alice"), "prefs")
    assert item.value == {"theme": "dark", "n": 1}
    assert item.namespace == ("users", "alice") and item.key == "prefs"
    assert item.created_at == item.updated_at


def test_a_second_put_replaces_the_value_and_keeps_the_creation_time(store):
    store.put(("a",), "k", {"v": 1})
    first = store.get(("a",), "k")
    store.put(("a",), "k", {"v": 2})
    second = store.get(("a",), "k")
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at and second.updated_at > first.updated_at


def test_get_of_a_missing_key_returns_none(store):
    assert store.get(("a",), "nope") is None


def test_delete_and_put_none_remove_the_item(store):
    store.put(("a",), "k", {"v": 1})
    store.delete(("a",), "k")
    assert store.get(("a",), "k") is None
    store.put(("a",), "k", {"v": 1})
    store.batch([PutOp(("a",), "k", None)])
    assert store.get(("a",), "k") is None


def test_search_matches_a_namespace_prefix_by_whole_labels(store):
    store.put(("a",), "1", {"v": 1})
    store.put(("a", "b"), "2", {"v": 2})
    store.put(("ab",), "3", {"v": 3})
    store.put(("a_",), "4", {"v": 4})
    assert {i.key for i in store.search(("a",))} == {"1", "2"}
    assert {i.key for i in store.search(("a", "b"))} == {"2"}
    assert {i.key for i in store.search(())} == {"1", "2", "3", "4"}
    assert [i.score for i in store.search(("a",))] == [None, None]


def test_search_filters_on_top_level_value_keys(store):
    for i in range(6):
        store.put(("f",), f"k{i}", {"n": i, "kind": "even" if i % 2 == 0 else "odd", "tag": None})
    keys = lambda **kw: sorted(i.key for i in store.search(("f",), **kw))  # noqa: E731
    assert keys(filter={"kind": "even"}) == ["k0", "k2", "k4"]
    assert keys(filter={"n": 3}) == ["k3"]
    assert keys(filter={"n": {"$gt": 3}}) == ["k4", "k5"]
    assert keys(filter={"n": {"$gte": 1, "$lt": 3}}) == ["k1", "k2"]
    assert keys(filter={"n": {"$lte": 0}}) == ["k0"]
    assert keys(filter={"kind": {"$ne": "even"}}) == ["k1", "k3", "k5"]
    assert keys(filter={"tag": None, "kind": "odd"}) == ["k1", "k3", "k5"]
    assert keys(filter={"missing": "x"}) == []


def test_search_pages_with_limit_and_offset_most_recent_first(store):
    for i in range(5):
        store.put(("p",), f"k{i}", {"i": i})
    assert [i.key for i in store.search(("p",), limit=2)] == ["k4", "k3"]
    assert [i.key for i in store.search(("p",), limit=2, offset=2)] == ["k2", "k1"]
    assert [i.key for i in store.search(("p",), limit=10, offset=4)] == ["k0"]


def test_search_filters_on_nested_keys_by_dotted_path(store):
    store.put(("d",), "hyphen", {"access-level": "public", "user": {"access-level": "nested"}})
    store.put(("d",), "digit", {"123abc": "ok", "user": {"123abc": "ok2", "age": 40}})
    store.put(("d",), "dotted", {"a.b": 1})  # a key with a dot of its own
    keys = lambda f: sorted(i.key for i in store.search(("d",), filter=f))  # noqa: E731
    assert keys({"access-level": "public"}) == ["hyphen"]
    assert keys({"user.access-level": "nested"}) == ["hyphen"]
    assert keys({"123abc": "ok"}) == ["digit"]
    assert keys({"user.123abc": "ok2"}) == ["digit"]
    assert keys({"user.age": {"$gte": 40}}) == ["digit"]
    assert keys({"user.age": {"$lt": 40}}) == []
    assert keys({"user.access-level": {"$ne": "nested"}}) == ["digit", "dotted"]
    assert keys({"a.b": 1}) == ["dotted"]  # the literal key still matches
    assert keys({"user": {"access-level": "nested"}}) == ["hyphen"]  # nested dict form


def test_search_filters_compare_any_json_number(store):
    for i, price in enumerate([-10, 0.5, 2**62, 10**30]):
        store.put(("n",), f"k{i}", {"price": price})
    keys = lambda f: sorted(i.key for i in store.search(("n",), filter=f))  # noqa: E731
    assert keys({"price": {"$lt": 10**100}}) == ["k0", "k1", "k2", "k3"]
    assert keys({"price": {"$gt": -(10**100)}}) == ["k0", "k1", "k2", "k3"]
    assert keys({"price": {"$lt": float("inf")}}) == ["k0", "k1", "k2", "k3"]
    assert keys({"price": {"$gt": float("-inf")}}) == ["k0", "k1", "k2", "k3"]
    assert keys({"price": {"$gte": 2**62}}) == ["k2", "k3"]
    assert keys({"price": 10**30}) == ["k3"]
    assert keys({"price": float("nan")}) == []
    assert keys({"price": {"$ne": float("nan")}}) == ["k0", "k1", "k2", "k3"]
    assert keys({"price": {"$lt": 0}}) == ["k0"]


@pytest.mark.parametrize(
    "key",
    ["access') = 'public' OR '1'='1' OR json_extract(value, '$.", "", "a..b", ".a", 'say "hi"'],
)
def test_an_invalid_filter_key_is_refused(store, key):
    store.put(("v",), "k", {"a": 1})
    with pytest.raises(ValueError, match="Invalid filter key"):
        store.search(("v",), filter={key: "x"})
    with pytest.raises(ValueError, match="Invalid filter key"):
        asyncio.run(store.asearch(("v",), filter={key: "x"}))


def test_search_without_an_index_ignores_the_query(store):
    store.put(("q",), "a", {"text": "alice likes tea"})
    store.put(("q",), "b", {"text": "bob likes coffee"})
    found = store.search(("q",), query="what does alice like?")
    assert [(i.key, i.score) for i in found] == [("b", None), ("a", None)]
    found = asyncio.run(store.asearch(("q",), query="coffee", filter={"text": "alice likes tea"}))
    assert [i.key for i in found] == ["a"]


def test_list_namespaces_with_prefix_suffix_depth_and_paging(store):
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("b", "c"), ("a_b",)]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces() == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "x"),
        ("a_b",),
        ("b", "c"),
    ]
    assert store.list_namespaces(prefix=("a",)) == [("a", "b", "c"), ("a", "b", "d"), ("a", "x")]
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("b", "c")]
    assert store.list_namespaces(prefix=("a", "*", "d")) == [("a", "b", "d")]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "x"), ("a_b",), ("b", "c")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "x")]


def test_a_batch_runs_its_operations_in_order(store):
    results = store.batch(
        [
            PutOp(("a",), "k", {"v": 1}),
            GetOp(("a",), "k"),
            PutOp(("a",), "k", {"v": 2}),
            SearchOp(("a",)),
            PutOp(("a",), "k", None),
            GetOp(("a",), "k"),
            ListNamespacesOp(),
        ]
    )
    assert results[0] is None and results[1].value == {"v": 1}
    assert [i.value for i in results[3]] == [{"v": 2}]
    assert results[5] is None and results[6] == []


@pytest.mark.parametrize("namespace", [("a.b",), ("a", "")])
def test_namespaces_langgraph_forbids_are_refused_even_inside_batch(store, namespace):
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(namespace, "k", {"v": 1})])


def test_unicode_and_nested_values_round_trip(store):
    value = {"text": "héllo 👋 日本", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    store.put(("ü",), "ключ", value)
    assert store.get(("ü",), "ключ").value == value


def test_every_operation_works_through_the_async_api(store):
    async def scenario():
        await store.aput(("a", "b"), "k", {"v": 1})
        await store.aput(("a",), "j", {"v": 2})
        got = await store.aget(("a", "b"), "k")
        found = await store.asearch(("a",), filter={"v": 2})
        spaces = await store.alist_namespaces(prefix=("a",))
        await store.adelete(("a", "b"), "k")
        gone = await store.aget(("a", "b"), "k")
        results = await store.abatch([GetOp(("a",), "j"), SearchOp(("a",), limit=1)])
        return got, found, spaces, gone, results

    got, found, spaces, gone, results = asyncio.run(scenario())
    assert got.value == {"v": 1} and [i.key for i in found] == ["j"]
    assert spaces == [("a",), ("a", "b")] and gone is None
    assert results[0].value == {"v": 2} and [i.key for i in results[1]] == ["j"]


def test_async_calls_work_again_in_a_second_event_loop(store):
    asyncio.run(store.aput(("a",), "k", {"v": 1}))
    assert asyncio.run(store.aget(("a",), "k")).value == {"v": 1}


def test_random_operations_give_the_same_answers_as_the_in_memory_store(store):
    memory = InMemoryStore()
    rng = random.Random(7)
    namespaces = [("a",), ("a", "b"), ("a", "b", "c"), ("ab",), ("a_",), ("x", "a")]
    for _ in range(300):
        ns, key = rng.choice(namespaces), f"k{rng.randrange(8)}"
        value = None if rng.random() < 0.2 else {"n": rng.randrange(4), "s": rng.choice("xyz")}
        for s in (store, memory):
            s.batch([PutOp(ns, key, value)])
    queries = [
        SearchOp(prefix, flt, 1000, 0)
        for prefix in [(), ("a",), ("a", "b"), ("x",)]
        for flt in [None, {"n": 2}, {"s": {"$ne": "x"}}, {"n": {"$gte": 1}, "s": "y"}]
    ]
    for query in queries:
        ours = {(i.namespace, i.key, str(i.value)) for i in store.batch([query])[0]}
        theirs = {(i.namespace, i.key, str(i.value)) for i in memory.batch([query])[0]}
        assert ours == theirs, query
    for conditions, depth in [((), None), ((MatchCondition("suffix", ("b",)),), None), ((), 1)]:
        op = ListNamespacesOp(conditions, depth, 100, 0)
        assert store.batch([op]) == memory.batch([op])


def test_listing_namespaces_reads_one_entry_per_namespace(tmp_path):
    """Its cost follows the namespaces found, not the items they hold (SQLite VM steps)."""
    from langgraph.store.base import PutOp

    from deepmemory.stores import SQLiteStore

    def steps(items_each: int) -> int:
        store = SQLiteStore(tmp_path / f"ns{items_each}.db")
        ops = [
            PutOp(("t", f"u{u}"), f"k{i}", {"i": i}) for u in range(5) for i in range(items_each)
        ]
        store.batch(ops)
        conn = store._connection()
        count = [0]

        def tick() -> int:
            count[0] += 1
            return 0

        conn.set_progress_handler(tick, 1)
        try:
            found = store.list_namespaces(prefix=("t",))
        finally:
            conn.set_progress_handler(None, 1)
            store.close()
        assert found == [("t", f"u{u}") for u in range(5)]
        return count[0]

    assert steps(2000) <= 2 * steps(10)


def _rows(store, namespace) -> int:
    """Rows the database holds in ``namespace``, expired or not."""
    from deepmemory.stores._sql import _step, encode_namespace

    sql = "SELECT count(*) FROM deepmemory_items WHERE namespace = :ns"
    step = _step(store.dialect, sql, {"ns": encode_namespace(namespace)}, lambda r: r[0][0])
    return int(store._one(step))


def _ttl_store(store, ttl):
    """The same database as ``store``, opened with LangGraph's ``ttl=`` config."""
    from deepmemory.stores import PostgresStore, SQLiteStore

    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path, ttl=ttl)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.connection_string, schema=store.schema, ttl=ttl)


def test_items_put_with_a_ttl_expire_unless_read(store):
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock

    assert store.supports_ttl
    # The same database; hides expired items; reads refresh (by default, unless told not).
    store = _ttl_store(store, {"omit_expired": True, "refresh_on_read": True})
    with use_clock(ManualClock()) as clock, contextlib.closing(store):
        store.put(("ttl", "a"), "short", {"v": 1}, ttl=10)
        store.put(("ttl", "a"), "kept", {"v": 2}, ttl=10)
        store.put(("ttl", "b"), "forever", {"v": 3})
        clock.advance(timedelta(minutes=6))
        assert store.get(("ttl", "a"), "kept").value == {"v": 2}  # refreshed: 10 more
        assert store.get(("ttl", "a"), "short", refresh_ttl=False).value == {"v": 1}
        clock.advance(timedelta(minutes=6))  # short: 12 min since put; kept: 6 since read
        assert store.get(("ttl", "a"), "short") is None
        assert sorted(i.key for i in store.search(("ttl",), refresh_ttl=False)) == [
            "forever",
            "kept",
        ]
        assert store.list_namespaces(prefix=("ttl",)) == [("ttl", "a"), ("ttl", "b")]
        clock.advance(timedelta(minutes=5))  # kept: 11 since its read (the search kept off)
        assert store.get(("ttl", "a"), "kept") is None
        assert store.list_namespaces(prefix=("ttl",)) == [("ttl", "b")]
        # A search refreshes what it returns; a put without a ttl clears it.
        store.put(("ttl", "c"), "s", {"v": 4}, ttl=10)
        store.put(("ttl", "c"), "p", {"v": 5}, ttl=10)
        clock.advance(timedelta(minutes=8))
        assert {i.key for i in asyncio.run(store.asearch(("ttl", "c")))} == {"s", "p"}
        clock.advance(timedelta(minutes=5))  # 13 since the puts, 5 since the search
        assert {i.key for i in store.search(("ttl", "c"), refresh_ttl=False)} == {"s", "p"}
        store.put(("ttl", "c"), "p", {"v": 6})
        clock.advance(timedelta(minutes=30))
        assert {i.key for i in store.search(("ttl", "c"))} == {"p"}
        store.put(("ttl", "c"), "live", {"v": 7}, ttl=60)
        assert store.sweep_ttl() == 3  # short, kept, s: their rows are gone
        assert asyncio.run(store.asweep_ttl()) == 0
        assert store.get(("ttl", "c"), "p").value == {"v": 6}
        assert _rows(store, ("ttl", "c")) == 2  # p and live: a live TTL is kept


def test_reads_refresh_ttls_by_default_as_langgraphs_store_of_the_engine(store):
    """Without ``refresh_on_read`` in the config, a read refreshes on PostgreSQL (as
    LangGraph's PostgresStore) and not on SQLite (as LangGraph's SqliteStore); with it
    false, on neither; a call's ``refresh_ttl=False`` always wins."""
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock
    from deepmemory.stores import PostgresStore

    def survives_a_default_read(config):
        ttl_store = _ttl_store(store, {"omit_expired": True, **config})
        with use_clock(ManualClock()) as clock, contextlib.closing(ttl_store):
            ttl_store.put(("rr",), "k", {"v": 1}, ttl=10)
            clock.advance(timedelta(minutes=6))
            assert ttl_store.get(("rr",), "k") is not None
            assert [i.key for i in ttl_store.search(("rr",))] == ["k"]
            clock.advance(timedelta(minutes=6))  # 12 since the put, 6 since the reads
            return ttl_store.get(("rr",), "k", refresh_ttl=False) is not None

    assert survives_a_default_read({}) == isinstance(store, PostgresStore)
    assert survives_a_default_read({"refresh_on_read": True}) is True
    assert survives_a_default_read({"refresh_on_read": False}) is False


def test_sweep_ttl_answers_a_count_that_async_code_may_await(store):
    """LangGraph's async stores are swept with ``await store.sweep_ttl()``."""
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock

    async def swept() -> int:
        return await store.sweep_ttl()

    with use_clock(ManualClock()) as clock:
        store.put(("sw",), "a", {"v": 1}, ttl=1)
        store.put(("sw",), "b", {"v": 1}, ttl=1)
        clock.advance(timedelta(minutes=2))
        assert asyncio.run(swept()) == 2
        assert store.sweep_ttl() == 0
        assert store.get(("sw",), "a") is None


def test_expired_items_are_read_until_swept_unless_omit_expired(store):
    """LangGraph's TTLConfig: without ``omit_expired`` an expired item is still read
    (get, search, list_namespaces) until a sweep deletes it; with it, it is not."""
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock

    omitting = _ttl_store(store, {"omit_expired": True})
    with use_clock(ManualClock()) as clock, contextlib.closing(omitting):
        store.put(("exp",), "k", {"v": 1}, ttl=1)
        clock.advance(timedelta(minutes=2))
        assert store.get(("exp",), "k", refresh_ttl=False).value == {"v": 1}
        assert [i.key for i in store.search(("exp",), refresh_ttl=False)] == ["k"]
        assert store.list_namespaces(prefix=("exp",)) == [("exp",)]
        assert omitting.get(("exp",), "k") is None
        assert omitting.search(("exp",)) == []
        assert omitting.list_namespaces(prefix=("exp",)) == []
        # A refreshing read does not bring an expired item back to life.
        assert store.get(("exp",), "k").value == {"v": 1}
        assert omitting.get(("exp",), "k") is None
        assert store.sweep_ttl() == 1
        assert store.get(("exp",), "k") is None


def test_async_code_awaits_the_sweeper_as_on_langgraph_async_stores(store):
    """``await store.start_ttl_sweeper()`` / ``await store.stop_ttl_sweeper()``."""
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock

    config = {"default_ttl": 1, "sweep_interval_minutes": 0.001}
    ttl_store = _ttl_store(store, config)

    async def run(clock: ManualClock) -> tuple[object, bool, bool]:
        await ttl_store.aput(("cfg",), "k", {"v": 1})
        clock.advance(timedelta(minutes=2))
        started = await ttl_store.start_ttl_sweeper()
        for _ in range(200):
            if _rows(store, ("cfg",)) == 0:
                break
            await asyncio.sleep(0.025)
        stopped = await ttl_store.stop_ttl_sweeper(timeout=5)
        return started, stopped, await ttl_store.stop_ttl_sweeper()

    try:
        with use_clock(ManualClock()) as clock:
            started, stopped, again = asyncio.run(run(clock))
        assert _rows(store, ("cfg",)) == 0
        assert stopped is True and again is True
        assert started.done()  # the sweeper's future: done once it stopped
    finally:
        ttl_store.close()


@pytest.mark.postgres
def test_stopping_the_sweeper_from_a_coroutine_never_blocks_its_loop(make_store):
    """The sweeper's delete waits for a transaction this loop holds open (a lock on the
    table: the sweeper skips locked rows, not a locked table): a blocking stop would
    wait for the sweeper while the sweeper waits for the loop. The server ends the
    transaction after 5 s idle, so with a blocking stop the statement after it fails
    instead of the test hanging."""
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock

    store = make_store("postgres", ttl={"sweep_interval_minutes": 0.001})

    async def scenario(clock: ManualClock) -> bool:
        await store.aput(("sweep",), "x", {"v": 1}, ttl=1)
        clock.advance(timedelta(minutes=2))
        async with store._aconnection() as conn, conn.transaction():
            await conn.execute("SET LOCAL idle_in_transaction_session_timeout = '5s'")
            await conn.execute("LOCK TABLE deepmemory_items IN SHARE ROW EXCLUSIVE MODE")
            store.start_ttl_sweeper()
            for _ in range(400):  # until the sweeper's delete waits for our lock
                async with store._aconnection() as other:
                    waiting = await (
                        await other.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND query LIKE 'DELETE FROM deepmemory_items WHERE %'"
                        )
                    ).fetchone()
                if waiting[0]:
                    break
                await asyncio.sleep(0.025)
            assert waiting[0], "the sweeper never reached the locked row"
            stopped = store.stop_ttl_sweeper()
            await conn.execute("SELECT 1")  # the transaction is still ours
        return await stopped

    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(scenario(clock)))
        except BaseException as exc:
            outcome.append(exc)

    with use_clock(ManualClock()) as clock:
        # In a thread of its own: a failure there can leave a pool connection in
        # flight that asyncio.run's teardown waits for, and this test must fail, not hang.
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(60)
    assert outcome == [True], outcome or "the loop never finished"
    assert _rows(store, ("sweep",)) in (0, 1)  # the last sweep ran, or stopped first


def test_the_ttl_config_sets_defaults_and_the_sweeper(store):
    from datetime import timedelta

    from deepmemory.clock import ManualClock, use_clock

    config = {
        "default_ttl": 5,
        "refresh_on_read": False,
        "sweep_interval_minutes": 0.001,
        "omit_expired": True,
    }
    ttl_store = _ttl_store(store, config)
    try:
        with use_clock(ManualClock()) as clock:
            ttl_store.put(("cfg",), "k", {"v": 1})  # default_ttl
            ttl_store.put(("cfg",), "none", {"v": 2}, ttl=None)  # explicitly none
            clock.advance(timedelta(minutes=3))
            assert ttl_store.get(("cfg",), "k").value == {"v": 1}  # no refresh on read
            clock.advance(timedelta(minutes=3))
            assert ttl_store.get(("cfg",), "k") is None
            # A reader without omit_expired (LangGraph's default) still reads it, unswept.
            assert store.get(("cfg",), "k").value == {"v": 1}
            assert _rows(store, ("cfg",)) == 2  # expired, not yet deleted
            done = ttl_store.start_ttl_sweeper()
            assert ttl_store.start_ttl_sweeper() is done  # one sweeper
            for _ in range(200):  # it sweeps every 0.06 s
                if _rows(store, ("cfg",)) == 1:
                    break
                time.sleep(0.025)
            assert _rows(store, ("cfg",)) == 1
            assert ttl_store.stop_ttl_sweeper(timeout=5)
            assert done.done()
            assert [i.key for i in store.search(("cfg",))] == ["none"]
    finally:
        ttl_store.close()


def test_setup_and_async_with_as_on_langgraph_stores(make_store, store_kind):
    """Code written for LangGraph's stores calls ``setup()`` (or awaits it) and opens
    async stores with ``async with``: both work on ours, on either engine."""
    store = make_store(store_kind)
    assert store.setup() is not None  # returns at once; the tables exist
    store.put(("setup",), "k", {"v": 1})
    if store_kind == "postgres":  # PostgreSQL creates them on first use, or on setup()
        import uuid

        import psycopg

        from deepmemory.stores import PostgresStore

        schema = f"setup_{uuid.uuid4().hex[:10]}"
        fresh = PostgresStore(store.connection_string, schema=schema)
        try:
            fresh.setup()
            with psycopg.connect(store.connection_string) as conn:
                found = conn.execute(
                    "SELECT to_regclass(%s)", (f"{schema}.deepmemory_items",)
                ).fetchone()
                assert found[0] is not None
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            fresh.close()

    async def run() -> dict:
        async with make_store(store_kind) as other:
            await other.setup()
            await other.aput(("setup",), "a", {"v": 2})
            found = await other.aget(("setup",), "k")
        with pytest.raises(Exception, match="closed"):
            await other.aget(("setup",), "k")
        return found.value

    assert asyncio.run(run()) == {"v": 1}
    assert store.get(("setup",), "a").value == {"v": 2}


def test_strict_loop_refuses_blocking_calls_inside_a_running_loop(make_store, store_kind):
    """``strict_loop=True``: LangGraph's async stores' rule. Blocking calls on the
    loop's thread raise (nothing is written); the async twins and the same blocking
    calls in a worker thread work."""
    from deepmemory.backends.protocol import StoredFile

    store = make_store(store_kind, strict_loop=True)
    ns = ("strict", "loop")
    blocking = {
        "put": lambda: store.put(ns, "k", {"v": 1}),
        "get": lambda: store.get(ns, "k"),
        "delete": lambda: store.delete(ns, "k"),
        "search": lambda: store.search(ns),
        "list_namespaces": lambda: store.list_namespaces(prefix=("strict",)),
        "batch": lambda: store.batch([PutOp(ns, "k", {"v": 2})]),
        "file_put": lambda: store.file_put(
            ns, "/f.md", StoredFile("x\n", "utf-8", "t", "t"), expected_version=None
        ),
        "file_get": lambda: store.file_get(ns, "/f.md"),
    }

    async def run() -> dict[str, str]:
        refused = {}
        for name, call in blocking.items():
            with pytest.raises(asyncio.InvalidStateError) as caught:
                call()
            refused[name] = str(caught.value)
        await store.aput(ns, "k", {"v": 3})
        assert (await store.aget(ns, "k")).value == {"v": 3}
        await asyncio.to_thread(store.put, ns, "k", {"v": 4})  # a worker thread may block
        return refused

    refused = asyncio.run(run())
    assert all("strict_loop=True" in m and "asyncio.to_thread" in m for m in refused.values())
    assert store.get(ns, "k").value == {"v": 4}  # outside a loop: allowed
    assert store.file_get(ns, "/f.md") is None  # the refused write wrote nothing


def test_blocking_calls_inside_a_running_loop_work_by_default(make_store, store_kind):
    store = make_store(store_kind)

    async def run() -> object:
        store.put(("loop",), "k", {"v": 1})
        return store.get(("loop",), "k").value

    assert asyncio.run(run()) == {"v": 1}
