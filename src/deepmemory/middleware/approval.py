"""Human approval of memory writes under chosen paths, showing the proposed diff.

``approve_writes(["/memories/instructions.txt"], backend)`` returns ``interrupt_on``
entries for ``write_file``, ``edit_file`` and ``delete`` that pause the run (through
LangChain's human-in-the-loop middleware and LangGraph interrupts) only when the
call's path lies under one of the prefixes. The reviewer sees a unified diff of the
file as it is and as the call would leave it; approving, editing or rejecting
resumes the run as LangChain's middleware defines. ``create_deep_agent`` builds them
from its ``approve_writes=`` argument.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, Literal

from langchain.agents.middleware import InterruptOnConfig

from deepmemory import errors, paths
from deepmemory.backends._text import count_and_replace
from deepmemory.middleware.filesystem import resolve_backend, run_config

WRITE_TOOLS = ("write_file", "edit_file", "delete")
MAX_DIFF_CHARS = 20_000


def _target(args: dict[str, Any]) -> str | None:
    try:
        return paths.validate(args.get("file_path"))
    except errors.InvalidPathError:
        return None  # the tool refuses it; nothing to approve


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
    """A unified diff of what the call would do to the file (or what it deletes)."""
    path = str(args.get("file_path"))
    if name == "delete":
        lines = 0 if before is None else len(before.splitlines())
        return f"Delete {path} ({lines} lines)."
    if name == "write_file":
        after = str(args.get("content", ""))
    else:
        old, new = str(args.get("old_string", "")), str(args.get("new_string", ""))
        count, after = count_and_replace(
            before or "", old, new, bool(args.get("replace_all", False))
        )
        if count == 0 or not old:
            return f"Edit {path}: old_string not found; the call will fail without changes."
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
        >>> sorted(approve_writes(["/memories/instructions.txt"], StateBackend()))
        ['delete', 'edit_file', 'write_file']
    """
    protected = [paths.validate(p) for p in prefixes]

    def when(request: Any) -> bool:
        path = _target(request.tool_call.get("args") or {})
        return path is not None and any(paths.is_within(path, p) for p in protected)

    def describe(tool_call: Any, state: Any, runtime: Any) -> str:
        args = tool_call.get("args") or {}
        path = _target(args)
        before = _current_text(backend, state, runtime, path) if path else None
        return (
            f"The agent wants to change protected memory with {tool_call['name']}:\n\n"
            + proposed_change(tool_call["name"], args, before)
        )

    def config() -> InterruptOnConfig:
        return {
            "allowed_decisions": list(allowed_decisions),
            "description": describe,
            "when": when,
        }

    return {name: config() for name in WRITE_TOOLS}
