"""With our stores and no checkpointer, memory *and* thread state survive a restart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import postgres_url

SCRIPT = textwrap.dedent(
    """
    import sys
    from langchain_core.messages import AIMessage
    from deepmemory import create_deep_agent
    from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
    from deepmemory.stores import PostgresStore, SQLiteStore
    from deepmemory.testing import ScriptedChatModel, calls, tool_call

    where, thread, step = sys.argv[1], sys.argv[2], sys.argv[3]
    store = PostgresStore(connection_string=where) if "://" in where else SQLiteStore(where)
    if step == "write":
        replies = [calls(tool_call("write_file", file_path="/draft.txt", content="draft"),
                         tool_call("write_file", file_path=f"/memories/{thread}.txt",
                                   content="kept")),
                   AIMessage("saved")]
    else:
        replies = [calls(tool_call("read_file", file_path="/draft.txt"),
                         tool_call("read_file", file_path=f"/memories/{thread}.txt")),
                   AIMessage("read")]
    agent = create_deep_agent(
        model=ScriptedChatModel(replies=replies), store=store,
        backend=lambda rt: CompositeBackend(default=StateBackend(rt),
                                            routes={"/memories/": StoreBackend(rt)}),
    )
    result = agent.invoke({"messages": [{"role": "user", "content": step}]},
                          {"configurable": {"thread_id": thread}})
    for m in result["messages"]:
        if m.type == "tool":
            print(m.text)
    store.close()
    """
)


def run(where: str, thread: str, step: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, where, thread, step],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_thread_files_and_memories_survive_a_new_process(engine, tmp_path: Path):
    where = str(tmp_path / "memory.db") if engine == "sqlite" else postgres_url()
    thread = f"restart-{uuid.uuid4().hex}"
    run(where, thread, "write")
    out = run(where, thread, "read")  # a new process: nothing in memory carried over
    assert "     1\tdraft" in out  # thread state came back from the database
    assert "     1\tkept" in out  # long-term memory too
    other = run(where, f"other-{uuid.uuid4().hex}", "read")
    assert "'/draft.txt' not found" in other  # ...and stays with its own thread


def test_an_explicit_checkpointer_wins(tmp_path: Path):
    from langgraph.checkpoint.memory import InMemorySaver

    from deepmemory import create_deep_agent
    from deepmemory.stores import SQLiteStore
    from deepmemory.testing import ScriptedChatModel

    saver = InMemorySaver()
    with SQLiteStore(tmp_path / "m.db") as store:
        agent = create_deep_agent(
            model=ScriptedChatModel(replies=[]), store=store, checkpointer=saver
        )
        assert agent.checkpointer is saver
        paired = create_deep_agent(model=ScriptedChatModel(replies=[]), store=store)
        assert paired.checkpointer is store.checkpointer()
