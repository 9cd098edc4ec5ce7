"""How a conversation reads on a terminal and in JSON: compact tool calls, message rows.

A tool call is one line, its name and its main argument (``→ write_file
/memories/preferences.txt``), whether it streams by in ``chat`` or is listed by
``threads show``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: `deepmemory --help` must not load LangChain
    from langchain_core.messages import BaseMessage

# The argument that says what a call is about, by tool; others show their first argument.
_MAIN_ARGUMENT = {
    "ls": "path",
    "read_file": "file_path",
    "write_file": "file_path",
    "edit_file": "file_path",
    "delete": "file_path",
    "glob": "pattern",
    "grep": "pattern",
    "task": "description",
}
MAX_ARGUMENT_CHARS = 70
ROLES = {"human": "you", "ai": "assistant", "tool": "tool", "system": "system"}


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def tool_call_line(name: str, args: dict[str, Any]) -> str:
    """``→ name main-argument``: one tool call, compact."""
    if name == "write_todos":
        todos = args.get("todos")
        return f"→ write_todos ({len(todos) if isinstance(todos, list) else 0} items)"
    key = _MAIN_ARGUMENT.get(name) or next(iter(args), None)
    value = args.get(key) if key else None
    if value is None:
        return f"→ {name}"
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if name == "grep" and args.get("path"):
        shown = f"{shown!r} in {args['path']}"
    elif name == "task" and args.get("subagent_type"):
        shown = f"{args['subagent_type']}: {shown}"
    return f"→ {name} {shorten(shown, MAX_ARGUMENT_CHARS)}"


def message_record(message: BaseMessage) -> dict[str, Any]:
    """A message as JSON for programs: role, content, tool calls or the tool's name."""
    from langchain_core.messages import AIMessage, ToolMessage

    record: dict[str, Any] = {"role": ROLES.get(message.type, message.type)}
    record["content"] = message.text
    if isinstance(message, AIMessage) and message.tool_calls:
        record["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        record["name"] = message.name
    return record


def first_human_text(messages: list[BaseMessage]) -> str:
    """The conversation's first user message ('' if none)."""
    from langchain_core.messages import HumanMessage

    return next((m.text for m in messages if isinstance(m, HumanMessage)), "")


def last_text(messages: list[BaseMessage]) -> str:
    """The latest user or assistant message that has text ('' if none)."""
    from langchain_core.messages import AIMessage, HumanMessage

    for message in reversed(messages):
        if isinstance(message, HumanMessage | AIMessage) and message.text:
            return message.text
    return ""
