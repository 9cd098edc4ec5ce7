"""Human approval of memory writes under chosen paths, showing the proposed diff.

``approve_writes(["/memories/instructions.txt"], backend)`` returns ``interrupt_on``
entries for every tool that writes files (``write_file``, ``edit_file``, ``delete``,
and any tool an integration registers) that pause the run (through LangChain's
human-in-the-loop middleware and LangGraph interrupts) only when a path the call
changes lies under one of the prefixes. The reviewer sees a unified diff of the file
as it is and as the call would leave it; approving, editing or rejecting resumes the
run as LangChain's middleware defines. ``create_deep_agent`` builds them from its
``approve_writes=`` argument.

The hook for other tools is :func:`register_write_tool`: a :class:`WriteTool` says
which paths a call changes and how to show the change, and the file tools are
registered the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

from langchain.agents.middleware import InterruptOnConfig

from deepmemory import errors, paths
from deepmemory.backends._text import count_and_replace
from deepmemory.middleware.filesystem import resolve_backend, run_config

WRITE_TOOLS = ("write_file", "edit_file", "delete")
MAX_DIFF_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class WriteTool:
    """How approval reads the calls of one tool that changes files.

    ``targets(args)`` are the paths a call would change, as the tool will resolve them
    (none: this call changes nothing, such as a read); paths that are not valid are
    skipped, as the tool refuses them. ``change(args, before)`` describes the change for
    the reviewer, given the first target's current text (``None``: no such file).
    """

    name: str
    targets: Callable[[dict[str, Any]], Sequence[object]]
    change: Callable[[dict[str, Any], str | None], str]


def _file_tool(name: str) -> WriteTool:
    return WriteTool(
        name,
        lambda args: [args.get("file_path")],
        lambda args, before: proposed_change(name, args, before),
    )


# The file tools are registered like any other write tool; integrations add theirs.
_WRITE_TOOLS: dict[str, WriteTool] = {name: _file_tool(name) for name in WRITE_TOOLS}


def register_write_tool(tool: WriteTool) -> None:
    """Make ``approve_writes`` pause this tool's calls too (an integration calls it once)."""
    _WRITE_TOOLS[tool.name] = tool


def _targets(name: str, args: dict[str, Any]) -> list[str]:
    tool = _WRITE_TOOLS.get(name)
    found = []
    for target in tool.targets(args) if tool else ():
        try:
            found.append(paths.validate(target))
        except errors.InvalidPathError:
            continue  # the tool refuses it; nothing to approve
    return found


def _current_text(backend_spec: Any, state: Any, runtime: Any, path: str) -> str | None:
    rt = SimpleNamespace(
        state=state,
        store=getattr(runtime, "store", None),
        context=getattr(runtime, "context", None),
        config=run_config(),
    )
    (download,) = resolve_backend(backend_spec, rt).download_files([path])
    if download.content is None:
        return None
    return str(download.content.decode("utf-8", "replace"))


def proposed_change(name: str, args: dict[str, Any], before: str | None) -> str:
    """A unified diff of what a file tool's call would do to the file (or what it deletes)."""
    path = str(args.get("file_path"))
    if name == "delete":
        return deletion(path, before)
    if name == "write_file":
        after = str(args.get("content", ""))
    else:
        old, new = str(args.get("old_string", "")), str(args.get("new_string", ""))
        count, after = count_and_replace(
            before or "", old, new, bool(args.get("replace_all", False))
        )
        if count == 0 or not old:
            return f"Edit {path}: old_string not found; the call will fail without changes."
    return unified_diff(path, before, after)


def deletion(path: str, before: str | None) -> str:
    """What the reviewer sees of a delete."""
    lines = 0 if before is None else len(before.splitlines())
    return f"Delete {path} ({errors.count(lines, 'line')})."


def unified_diff(path: str, before: str | None, after: str) -> str:
    """The change from ``before`` (``None``: a new file) to ``after``, capped in length."""
    diff = "".join(
        difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{path} (now)" if before is not None else "/dev/null",
            tofile=f"{path} (proposed)",
        )
    )
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + "\n... [diff truncated]"
    return diff or f"{path}: no change."


def approve_writes(
    prefixes: Sequence[str],
    backend: Any,
    *,
    allowed_decisions: Sequence[Literal["approve", "edit", "reject", "respond"]] = (
        "approve",
        "edit",
        "reject",
    ),
) -> dict[str, bool | InterruptOnConfig]:
    """``interrupt_on`` entries pausing writes under ``prefixes`` for human approval.

    Example:
        >>> from deepmemory.backends import StateBackend
        >>> entries = approve_writes(["/memories/instructions.txt"], StateBackend())
        >>> {"write_file", "edit_file", "delete"} <= set(entries)  # and registered tools
        True
    """
    protected = [paths.validate(p) for p in prefixes]

    def when(request: Any) -> bool:
        found = _targets(request.tool_call["name"], request.tool_call.get("args") or {})
        return any(paths.is_within(path, p) for path in found for p in protected)

    def describe(tool_call: Any, state: Any, runtime: Any) -> str:
        name, args = tool_call["name"], tool_call.get("args") or {}
        found = _targets(name, args)
        before = _current_text(backend, state, runtime, found[0]) if found else None
        change = _WRITE_TOOLS[name].change(args, before)
        return f"The agent wants to change protected memory with {name}:\n\n{change}"

    def config() -> InterruptOnConfig:
        return {
            "allowed_decisions": list(allowed_decisions),
            "description": describe,
            "when": when,
        }

    return {name: config() for name in _WRITE_TOOLS}
