"""The memory map is built again only when memory changed, and its cost follows what it shows."""

from __future__ import annotations

import asyncio
import uuid

from langchain.agents import create_agent
from langchain_core.messages import AIMessage

from deepmemory import FilesystemMiddleware
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.stores._base import SQLStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call

MAP = "### What your long-term memory holds now"


def _map(messages) -> str:
    text = messages[0].text
    return text[text.index(MAP) :]


def _agent(store: SQLStore, replies):
    middleware = FilesystemMiddleware(
        backend=CompositeBackend(
            default=StateBackend(), routes={"/memories/": StoreBackend(store=store)}
        )
    )
    model = ScriptedChatModel(replies=replies)
    graph = create_agent(model, [], middleware=[middleware], store=store)
    return graph, model, middleware


def _ask(graph) -> None:
    graph.invoke(
        {"messages": [{"role": "user", "content": "x"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
    )


def test_the_map_is_reused_until_memory_changes(store: SQLStore) -> None:
    memory = StoreBackend(store=store)
    memory.write("/old.txt", "Old note\n")
    # Enough newer files that the oldest one's deletion shows only in the count.
    memory.upload_files([(f"/fill/f{i:02d}.md", b"filler\n") for i in range(50)])
    memory.write("/keep.txt", "Kept note\n")
    graph, model, middleware = _agent(
        store,
        [
            calls(tool_call("read_file", file_path="/memories/old.txt")),
            calls(tool_call("read_file", file_path="/memories/keep.txt")),
            calls(tool_call("write_file", file_path="/memories/new.txt", content="New note\n")),
            AIMessage("done"),
            AIMessage("again"),
            AIMessage("and again"),
            AIMessage("and once more"),
            AIMessage("after the edit"),
        ],
    )
    _ask(graph)
    # Four model calls: reads leave memory as it was, the write changes it.
    assert middleware.map_cache.builds == 2
    assert "new.txt" not in _map(model.received[2])
    assert "- /memories/new.txt (9 B): New note" in _map(model.received[3])

    # The oldest files, deleted by someone else: each next call counts one file less.
    assert "(53 files)" in _map(model.received[3])
    memory.delete("/old.txt")
    _ask(graph)
    assert middleware.map_cache.builds == 3
    assert "(52 files)" in _map(model.received[4])
    memory.delete("/fill/f00.md")
    _ask(graph)
    assert middleware.map_cache.builds == 4
    assert "(51 files)" in _map(model.received[5])

    _ask(graph)  # nothing changed since
    assert middleware.map_cache.builds == 4
    assert _map(model.received[6]) == _map(model.received[5])

    # An edit that keeps the size and the first line's place still counts as a change.
    memory.edit("/keep.txt", "Kept note", "Kept nose")
    _ask(graph)
    assert middleware.map_cache.builds == 5
    assert "Kept nose" in _map(model.received[7])


def test_async_runs_reuse_the_map_too(store: SQLStore) -> None:
    StoreBackend(store=store).write("/a.txt", "Alpha\n")
    graph, model, middleware = _agent(
        store,
        [calls(tool_call("read_file", file_path="/memories/a.txt")), AIMessage("ok")],
    )

    async def run() -> None:
        await graph.ainvoke(
            {"messages": [{"role": "user", "content": "x"}]},
            {"configurable": {"thread_id": "t"}},
        )

    asyncio.run(run())
    assert middleware.map_cache.builds == 1
    assert _map(model.received[1]) == _map(model.received[0])


def test_another_user_changing_their_memory_leaves_this_map_alone(store: SQLStore) -> None:
    StoreBackend(store=store).write("/mine.txt", "Mine\n")
    graph, _, middleware = _agent(store, [AIMessage("one"), AIMessage("two")])
    _ask(graph)
    theirs = StoreBackend(store=store, namespace=("someone", "else"))
    theirs.write("/theirs.txt", "Theirs\n")
    theirs.write("/gone.txt", "Gone\n")
    theirs.delete("/gone.txt")
    _ask(graph)
    assert middleware.map_cache.builds == 1


def test_the_map_shows_the_newest_files_and_counts_the_rest(store: SQLStore) -> None:
    memory = StoreBackend(store=store)
    memory.upload_files([(f"/bulk/f{i:03d}.md", b"filler\n") for i in range(120)])
    memory.write("/latest.txt", "The latest thing\n")
    memory.edit("/bulk/f007.md", "filler", "touched again")
    recent = memory.recent("/", 3)
    assert [f.path for f in recent.files] == ["/bulk/f007.md", "/latest.txt", "/bulk/f119.md"]
    assert recent.total == 121 and not recent.total_capped
    assert recent.files[0].first_line == "touched again"
    assert [f.path for f in memory.recent("/bulk", 2).files] == ["/bulk/f007.md", "/bulk/f119.md"]
    assert memory.recent("/bulk", 2).total == 120
    graph, model, _ = _agent(store, [AIMessage("ok")])
    _ask(graph)
    shown = _map(model.received[0])
    assert "(121 files)" in shown
    assert shown.index("/memories/bulk/f007.md") < shown.index("/memories/latest.txt")
    assert "and 81 more files" in shown
