"""One turn of ``chat``/``run`` in this process, with a scripted model: what is shown, what is kept."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from deepmemory.cli._config import Settings
from deepmemory.cli._transcript import tool_call_line
from deepmemory.cli.chat import (
    ERASE_LINE,
    INTERRUPTED,
    WAITING,
    Printer,
    _run_turn,
    build_agent,
    event_loop,
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


class StreamingModel(BaseChatModel):
    """Streams ``words`` one chunk at a time, a little apart, and records what it was sent."""

    words: list[str]
    received: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "streaming-test-model"

    def bind_tools(self, tools: Any, **kwargs: Any) -> StreamingModel:
        return self

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        self.received.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage("".join(self.words)))])

    async def _astream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.received.append(list(messages))
        for word in self.words:
            await asyncio.sleep(0.005)
            chunk = ChatGenerationChunk(message=AIMessageChunk(word))
            if run_manager:
                await run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


class CtrlCAfter(Printer):
    """A printer that presses Ctrl-C (a real SIGINT) after ``pieces`` pieces of the reply."""

    def __init__(self, pieces: int) -> None:
        super().__init__(quiet=True)
        self.pieces = pieces

    def text(self, piece: str) -> None:
        self.pieces -= 1
        if self.pieces == 0:
            signal.raise_signal(signal.SIGINT)


def test_a_reply_interrupted_with_ctrl_c_is_kept_in_the_thread_marked_and_seen_next_turn(
    tmp_path, store
):
    model = StreamingModel(words=[f"word{i} " for i in range(200)], received=[])
    agent = build_agent(model, store, settings(tmp_path))
    config = thread_config("t1", settings(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        _run_turn(event_loop(), agent, "tell me a story", config, CtrlCAfter(5))

    kept = agent.get_state(config).values["messages"]
    assert [m.type for m in kept] == ["human", "ai"]
    assert kept[1].text.startswith("word0 word1 word2")
    assert kept[1].text.endswith(INTERRUPTED) and "word150" not in kept[1].text
    assert kept[1].response_metadata["interrupted"] is True

    model.words = ["Sorry, ", "shorter then."]
    result = _run_turn(event_loop(), agent, "go on", config, Printer(quiet=True))
    assert result.reply == "Sorry, shorter then."
    sent = model.received[-1]
    assert [m.type for m in sent] == ["system", "human", "ai", "human"]
    assert sent[2].text == kept[1].text
    assert [m.type for m in agent.get_state(config).values["messages"]] == [
        "human",
        "ai",
        "human",
        "ai",
    ]


def test_a_turn_interrupted_before_the_model_said_anything_keeps_no_reply(tmp_path, store):
    model = StreamingModel(words=["", "late"], received=[])
    agent = build_agent(model, store, settings(tmp_path))
    config = thread_config("t1", settings(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        _run_turn(event_loop(), agent, "hello", config, CtrlCAfter(1))
    assert [m.type for m in agent.get_state(config).values["messages"]] == ["human"]


def test_chat_says_it_waits_for_the_model_until_its_first_output(tmp_path, store, capsys):
    model = ScriptedChatModel(
        replies=[calls(tool_call("ls", path="/memories")), AIMessage("Nothing yet.")]
    )
    agent = build_agent(model, store, settings(tmp_path))
    config = thread_config("t1", settings(tmp_path))
    asyncio.run(stream_turn(agent, "what do you know?", config, Printer(waiting=True)))
    shown = capsys.readouterr().out
    assert shown == (f"{WAITING}{ERASE_LINE}  → ls /memories\n{WAITING}{ERASE_LINE}Nothing yet.\n")

    asyncio.run(stream_turn(agent, "and now?", config, Printer()))  # run, or not a terminal
    assert WAITING not in capsys.readouterr().out
