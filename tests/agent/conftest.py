"""A scripted model that acts out what the seed document's prose describes."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from deepmemory.testing import ScriptedChatModel, calls, tool_call

# What the user asks -> the tool calls a good model makes for it.
PLAYBOOK: list[tuple[str, Callable[[], AIMessage]]] = [
    (
        r"Write draft to (/\S+)",
        lambda: calls(
            tool_call("write_file", file_path="/draft.txt", content="Draft: first pass\n")
        ),
    ),
    (
        r"Save final report to (/\S+)",
        lambda: calls(
            tool_call("write_file", file_path="/memories/report.txt", content="Final report\n")
        ),
    ),
    (
        r"Save my preferences",
        lambda: calls(
            tool_call(
                "write_file",
                file_path="/memories/preferences.txt",
                content="Prefers concise answers\nUses metric units\n",
            )
        ),
    ),
    (
        r"What are my preferences",
        lambda: calls(
            tool_call("ls", path="/memories/"),
            tool_call("read_file", file_path="/memories/preferences.txt"),
        ),
    ),
    (
        r"I prefer dark mode",
        lambda: calls(
            tool_call(
                "write_file",
                file_path="/memories/user_preferences.txt",
                content="Theme: dark mode\n",
            )
        ),
    ),
    (
        r"What theme do I like",
        lambda: calls(tool_call("read_file", file_path="/memories/user_preferences.txt")),
    ),
    (
        r"building a web app with React",
        lambda: calls(
            tool_call(
                "write_file",
                file_path="/memories/project_notes.txt",
                content="Project: web app\nFramework: React\n",
            )
        ),
    ),
    (
        r"What framework are we using",
        lambda: calls(tool_call("read_file", file_path="/memories/project_notes.txt")),
    ),
    (
        r"Start the instructions file",
        lambda: calls(
            tool_call(
                "write_file",
                file_path="/memories/instructions.txt",
                content="Instructions:\n- Be concise\n",
            )
        ),
    ),
    (
        r"please always answer in bullet points",
        lambda: calls(
            tool_call(
                "edit_file",
                file_path="/memories/instructions.txt",
                old_string="- Be concise\n",
                new_string="- Be concise\n- Always answer in bullet points\n",
            )
        ),
    ),
    (
        r"Research the history of tea",
        lambda: calls(
            tool_call(
                "write_file",
                file_path="/memories/research/sources.txt",
                content="https://example.org/tea-history\n",
            ),
            tool_call(
                "write_file",
                file_path="/memories/research/notes.txt",
                content="Tea came to Europe in the 17th century.\n",
            ),
        ),
    ),
    (
        r"Where did we leave the research",
        lambda: calls(
            tool_call("ls", path="/memories/research/"),
            tool_call("read_file", file_path="/memories/research/notes.txt"),
        ),
    ),
    (r"Read draft", lambda: calls(tool_call("read_file", file_path="/draft.txt"))),
]


def seed_policy(messages: list[BaseMessage]) -> AIMessage:
    """Act on the latest user message; after tool results, answer from them."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        results = []
        for message in reversed(messages):
            if isinstance(message, HumanMessage):
                break
            if isinstance(message, ToolMessage):
                results.append(message.text)
        return AIMessage("Done. " + " | ".join(reversed(results)))
    human = next(m for m in reversed(messages) if isinstance(m, HumanMessage)).text
    for pattern, reply in PLAYBOOK:
        if re.search(pattern, human):
            return reply()
    return AIMessage("I have nothing to do for that.")


@pytest.fixture
def seed_model() -> ScriptedChatModel:
    return ScriptedChatModel(replies=seed_policy)


def final_text(result: dict) -> str:
    return result["messages"][-1].text


def tool_messages(result: dict) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]
