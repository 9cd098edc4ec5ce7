"""An agent's changes to its memory are revisions: attributed to their thread, and undoable.

A self-improving agent keeps its instructions in /memories/instructions.txt and edits
them with edit_file; the person who owns the memory lists the history, sees the diff,
and restores the version before a bad edit. Real SQLite files and PostgreSQL, invoke
and ainvoke.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import psycopg
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from psycopg import sql

from deepmemory import create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call
from tests.conftest import postgres_url

NS = ("memories", "alice")
INSTRUCTIONS = "/memories/instructions.txt"
ORIGINAL = "Instructions:\n- Be concise\n"

# What the user says -> the tool call a self-improving agent makes for it.
PLAYBOOK = [
    (
        r"Start the instructions",
        lambda: tool_call("write_file", file_path=INSTRUCTIONS, content=ORIGINAL),
    ),
    (
        r"always answer in bullet points",
        lambda: tool_call(
            "edit_file",
            file_path=INSTRUCTIONS,
            old_string="- Be concise\n",
            new_string="- Be concise\n- Always answer in bullet points\n",
        ),
    ),
    (r"Forget the instructions", lambda: tool_call("delete", file_path=INSTRUCTIONS)),
    (r"What are your instructions", lambda: tool_call("read_file", file_path=INSTRUCTIONS)),
]


def policy(messages: list[BaseMessage]) -> AIMessage:
    """Act on the latest user message; after a tool result, repeat it as the answer."""
    if isinstance(messages[-1], ToolMessage):
        return AIMessage(messages[-1].text)
    said = next(m for m in reversed(messages) if isinstance(m, HumanMessage)).text
    return next(calls(make()) for pattern, make in PLAYBOOK if re.search(pattern, said))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "memory.db") as store:
            yield store
        return
    url, schema = postgres_url(), f"deepmemory_agent_{uuid.uuid4().hex[:10]}"
    with PostgresStore(url, schema=schema) as store:
        yield store
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["invoke", "ainvoke"])
def say(request, store):
    """``say(text, thread_id)``: one user turn of the agent in that thread; its reply."""
    agent = create_deep_agent(
        model=ScriptedChatModel(replies=policy),
        store=store,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt), routes={"/memories/": StoreBackend(rt, namespace=NS)}
        ),
    )

    def run(text: str, thread_id: str) -> str:
        config = {
            "configurable": {"thread_id": thread_id, "user_id": "alice", "assistant_id": "coach"}
        }
        turn = {"messages": [{"role": "user", "content": text}]}
        if request.param == "invoke":
            result = agent.invoke(turn, config)
        else:
            result = asyncio.run(agent.ainvoke(turn, config))
        return str(result["messages"][-1].text)

    return run


def test_a_bad_edit_to_the_agents_instructions_is_undone_from_history(store, say):
    say("Start the instructions file", "monday")
    say("From now on please always answer in bullet points", "tuesday")
    assert "bullet points" in store.file_get(NS, "/instructions.txt").content

    write, edit = store.history(NS, "/instructions.txt")
    assert store.diff(NS, "/instructions.txt", write.number, edit.number).splitlines()[2:] == [
        "@@ -1,2 +1,3 @@",
        " Instructions:",
        " - Be concise",
        "+- Always answer in bullet points",
    ]
    restored = store.restore(NS, "/instructions.txt", write.number)
    assert (restored.number, restored.op) == (3, "restore")

    # The agent reads the instructions as they were before the edit.
    assert say("What are your instructions?", "wednesday") == (
        "     1\tInstructions:\n     2\t- Be concise"
    )
    assert store.diff(NS, "/instructions.txt", write.number) == ""


def test_history_shows_the_thread_user_and_assistant_that_made_each_change(store, say):
    say("Start the instructions file", "thread-one")
    say("please always answer in bullet points", "thread-two")
    say("Forget the instructions", "thread-two")
    assert [
        (r.number, r.op, r.thread_id, r.user, r.assistant)
        for r in store.history(NS, "/instructions.txt")
    ] == [
        (1, "write", "thread-one", "alice", "coach"),
        (2, "edit", "thread-two", "alice", "coach"),
        (3, "delete", "thread-two", "alice", "coach"),
    ]


def test_instructions_the_agent_deleted_come_back_by_restoring_the_revision_before(store, say):
    say("Start the instructions file", "t1")
    say("Forget the instructions", "t1")
    assert store.file_get(NS, "/instructions.txt") is None
    assert "not found" in say("What are your instructions?", "t2")
    deletion = store.history(NS, "/instructions.txt")[-1]
    assert deletion.op == "delete" and deletion.size is None
    store.restore(NS, "/instructions.txt", deletion.number - 1)
    assert "Be concise" in say("What are your instructions?", "t3")
