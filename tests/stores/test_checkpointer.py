"""store.checkpointer() keeps thread state in the same database, for invoke and ainvoke."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph


class Counter(TypedDict):
    count: Annotated[int, operator.add]


def _graph(checkpointer, store):
    builder = StateGraph(Counter)
    builder.add_node("tick", lambda state: {"count": 1})
    builder.add_edge(START, "tick")
    builder.add_edge("tick", END)
    return builder.compile(checkpointer=checkpointer, store=store)


THREAD = {"configurable": {"thread_id": "thread-1"}}


def test_thread_state_survives_a_restart_through_invoke_and_ainvoke(make_store, store_kind):
    store = make_store(store_kind)
    saver = store.checkpointer()
    assert store.checkpointer() is saver
    graph = _graph(saver, store)
    assert graph.invoke({"count": 0}, THREAD)["count"] == 1
    assert asyncio.run(graph.ainvoke({"count": 0}, THREAD))["count"] == 2
    assert graph.invoke({"count": 0}, THREAD)["count"] == 3
    store.close()

    restarted = make_store(store_kind)  # A new process would do just this.
    graph = _graph(restarted.checkpointer(), restarted)
    assert graph.get_state(THREAD).values["count"] == 3
    assert asyncio.run(graph.ainvoke({"count": 0}, THREAD))["count"] == 4
    assert graph.invoke({"count": 0}, THREAD)["count"] == 5


def test_the_async_checkpointer_api_lists_and_deletes_threads(store):
    saver = store.checkpointer()
    graph = _graph(saver, store)

    async def scenario():
        await graph.ainvoke({"count": 0}, THREAD)
        await graph.ainvoke({"count": 0}, THREAD)
        listed = [c async for c in saver.alist(THREAD)]
        latest = await saver.aget_tuple(THREAD)
        await saver.adelete_thread("thread-1")
        return listed, latest, await saver.aget_tuple(THREAD)

    listed, latest, gone = asyncio.run(scenario())
    assert len(listed) >= 2 and latest.checkpoint["channel_values"]["count"] == 2
    assert gone is None and list(saver.list(THREAD)) == []


def test_memories_and_checkpoints_share_one_sqlite_file(make_store):
    import sqlite3

    store = make_store("sqlite")
    _graph(store.checkpointer(), store).invoke({"count": 0}, THREAD)
    store.put(("a",), "/m.txt", {"content": "memory"})
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM deepmemory_items").fetchone()[0] == 1
