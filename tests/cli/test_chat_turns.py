"""One turn of ``chat``/``run`` in this process, with a scripted model: what is shown, what is kept."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from deepmemory.cli._config import Settings
from deepmemory.cli._transcript import tool_call_line
from deepmemory.cli.chat import (
    Printer,
    build_agent,
    stream_turn,
    thread_config,
)
from deepmemory.stores import SQLiteStore
from deepmemory.testing import ScriptedChatModel
from deepmemory.testing.scripted import calls, tool_call


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "memory.db") as store:
        yield store


def settings(tmp_path) -> Settings:
    return Settings(db=str(tmp_path / "memory.db"), user="alice", model=None, base_url=None)


def test_a_turn_reports_its_reply_and_every_tool_call_and_saves_to_the_users_memory(
    tmp_path, store, capsys
):
    model = ScriptedChatModel(
        replies=[
            calls(tool_call("write_file", file_path="/memories/a.txt", content="tea\n")),
            AIMessage("Noted."),
        ]
    )
    agent = build_agent(model, store, settings(tmp_path))
    config = thread_config("t1", settings(tmp_path))
    result = asyncio.run(stream_turn(agent, "I like tea", config, Printer()))
    assert result.reply == "Noted."
    assert result.tool_calls == [
        {"name": "write_file", "args": {"file_path": "/memories/a.txt", "content": "tea\n"}}
    ]
    assert capsys.readouterr().out == "  → write_file /memories/a.txt\nNoted.\n"
    assert store.get(("memories", "alice"), "/a.txt").value["content"] == "tea\n"


def test_after_an_interrupted_turn_unanswered_tool_calls_get_a_result_so_the_next_turn_is_valid(
    tmp_path, store
):
    model = ScriptedChatModel(replies=[AIMessage("Fine.")])
    agent = build_agent(model, store, settings(tmp_path))
    config = thread_config("t1", settings(tmp_path))
    dangling = calls(tool_call("write_file", file_path="/memories/a.txt", content="x"))
    agent.update_state(config, {"messages": [HumanMessage("save x"), dangling]}, as_node="model")

    result = asyncio.run(stream_turn(agent, "never mind", config, Printer(quiet=True)))
    assert result.reply == "Fine."
    sent = model.received[-1]
    assert [m.type for m in sent] == ["system", "human", "ai", "tool", "human"]
    assert sent[3].tool_call_id == dangling.tool_calls[0]["id"]
    assert "interrupted before it ran" in sent[3].text


@pytest.mark.parametrize(
    ("name", "args", "line"),
    [
        (
            "write_file",
            {"file_path": "/memories/p.txt", "content": "x"},
            "→ write_file /memories/p.txt",
        ),
        ("ls", {}, "→ ls"),
        ("grep", {"pattern": "tea", "path": "/memories"}, "→ grep 'tea' in /memories"),
        ("write_todos", {"todos": [{}, {}]}, "→ write_todos (2 items)"),
        ("task", {"description": "d " * 80, "subagent_type": "general-purpose"}, None),
    ],
)
def test_a_tool_call_shows_as_one_short_line_with_its_main_argument(name, args, line):
    shown = tool_call_line(name, args)
    assert "\n" not in shown and len(shown) < 100
    if line is not None:
        assert shown == line
    else:
        assert shown.startswith("→ task general-purpose: d d") and shown.endswith("…")
