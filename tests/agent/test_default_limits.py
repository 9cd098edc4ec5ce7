"""Persistent memory is bounded by default: through ``create_deep_agent`` a huge
``write_file`` to a store route is refused with a clear message and nothing already
stored is lost, unless the application opts out (``memory_limits=False``)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.store.memory import InMemoryStore

from deepmemory import create_deep_agent
from deepmemory.backends import CompositeBackend, LimitsBackend, StateBackend, StoreBackend
from deepmemory.testing import ScriptedChatModel, calls, tool_call

HUGE = "x" * (64 * 1024 * 1024)


def run(replies: list[Any], backend: Any, **kwargs: Any) -> tuple[list[str], InMemoryStore]:
    store = InMemoryStore()
    agent = create_deep_agent(
        model=ScriptedChatModel(replies=replies), store=store, backend=backend, **kwargs
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "go"}]}, {"configurable": {"thread_id": "t"}}
    )
    return [m.text for m in result["messages"] if isinstance(m, ToolMessage)], store


def memory() -> CompositeBackend:
    return CompositeBackend(default=StateBackend(), routes={"/memories/": StoreBackend()})


def test_a_64_mb_write_to_memory_is_refused_and_the_file_kept() -> None:
    said, store = run(
        [
            calls(tool_call("write_file", file_path="/memories/notes.md", content="keep me\n")),
            calls(tool_call("write_file", file_path="/memories/notes.md", content=HUGE)),
            AIMessage("done"),
        ],
        memory(),
    )
    assert said[0] == "Wrote '/memories/notes.md'."
    assert "over the 1,048,576-byte limit" in said[1] and "Nothing was written" in said[1]
    assert store.get(("filesystem",), "/notes.md").value["content"] == "keep me\n"


def test_factories_and_thread_files_too_and_an_explicit_limit_is_kept() -> None:
    two_mb = "y" * (2 * 1024 * 1024)
    said, _ = run(
        [
            calls(tool_call("write_file", file_path="/memories/a.md", content=two_mb)),
            calls(tool_call("write_file", file_path="/draft.md", content=two_mb)),
            AIMessage("done"),
        ],
        lambda rt: CompositeBackend(
            default=StateBackend(rt), routes={"/memories/": StoreBackend(rt)}
        ),
    )
    assert "limit" in said[0] and said[1] == "Wrote '/draft.md'."  # thread state: no cap
    said, _ = run(
        [
            calls(tool_call("write_file", file_path="/memories/a.md", content="z" * 5000)),
            AIMessage("done"),
        ],
        CompositeBackend(
            default=StateBackend(),
            routes={"/memories/": LimitsBackend(StoreBackend(), max_file_bytes=4096)},
        ),
    )
    assert "over the 4,096-byte limit" in said[0]  # the application's own limit wins


def test_an_application_can_opt_out() -> None:
    two_mb = "y" * (2 * 1024 * 1024)
    said, store = run(
        [
            calls(tool_call("write_file", file_path="/memories/a.md", content=two_mb)),
            AIMessage("done"),
        ],
        memory(),
        memory_limits=False,
    )
    assert said == ["Wrote '/memories/a.md'."]
    assert len(store.get(("filesystem",), "/a.md").value["content"]) == len(two_mb)
