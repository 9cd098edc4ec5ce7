"""The memory map: what long-term memory holds, in the system prompt of every model call.

So the agent knows what it remembers without spending a tool call, the filesystem
middleware lists the files under each persistent route (outermost routes of a
``CompositeBackend`` that are not thread state): path, size and first line, which the
prompt asks the agent to keep as a one-line summary. The map is rebuilt for every
model call, so edits made during a run show at once, and it is bounded: at most
``MAX_MAP_FILES`` files are read (one glob, then one one-line read per file shown)
and the text stops at a character budget with a note to use ``ls``/``glob`` for more.
"""

from __future__ import annotations

from typing import Any

from deepmemory.backends._text import human_size
from deepmemory.backends.composite import CompositeBackend
from deepmemory.backends.protocol import FileInfo, ReadResult, uncounted_reads
from deepmemory.backends.state import StateBackend

MAX_MAP_FILES = 40
CHARS_PER_TOKEN = 4
MAX_SUMMARY_CHARS = 100


def memory_roots(backend: Any) -> list[str]:
    """Persistent route prefixes (``/memories/``), outermost first, nested ones left out."""
    if not isinstance(backend, CompositeBackend):
        return []
    mounts = sorted(m for m, b in backend.routes.items() if not isinstance(b, StateBackend))
    roots: list[str] = []
    for mount in mounts:
        if not any(mount.startswith(root + "/") for root in roots):
            roots.append(mount)
    return [root + "/" for root in roots]


def _summary(result: ReadResult) -> str:
    if result.binary:
        return "(binary)"
    if result.error or not result.lines:
        return "(empty)" if not result.error else ""
    line = result.lines[0].strip()
    return line if len(line) <= MAX_SUMMARY_CHARS else line[: MAX_SUMMARY_CHARS - 1] + "…"


def render_map(
    roots: list[str],
    files: list[FileInfo],
    summaries: dict[str, str],
    budget_tokens: int,
) -> str:
    """The map's text: one line per file, cut at the budget with a note saying how to see more."""
    head = f"### What your long-term memory holds now ({len(files)} files)"
    if not files:
        return f"{head}\nNothing yet under {', '.join(roots)}."
    budget = budget_tokens * CHARS_PER_TOKEN
    lines = [head]
    used = len(head)
    shown = 0
    for info in files:
        summary = summaries.get(info.path)
        line = f"- {info.path} ({human_size(info.size or 0)})" + (f": {summary}" if summary else "")
        if shown == MAX_MAP_FILES or used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    if shown < len(files):
        lines.append(
            f"- ... and {len(files) - shown} more files: use ls or glob on {roots[0]} to see them."
        )
    return "\n".join(lines)


def _files(results: list[Any]) -> list[FileInfo]:
    files = [f for result in results if not result.error for f in result.files]
    # Most recently changed first: what the agent touched lately is most likely relevant.
    return sorted(files, key=lambda f: f.modified_at or "", reverse=True)


def build_map(backend: Any, roots: list[str], budget_tokens: int) -> str:
    """The memory map of ``roots`` (blocking I/O)."""
    files = _files([backend.glob("**", root) for root in roots])
    with uncounted_reads():  # the map must not keep every mapped file from expiring
        summaries = {f.path: _summary(backend.read(f.path, 0, 1)) for f in files[:MAX_MAP_FILES]}
    return render_map(roots, files, summaries, budget_tokens)


async def abuild_map(backend: Any, roots: list[str], budget_tokens: int) -> str:
    """Async ``build_map``."""
    files = _files([await backend.aglob("**", root) for root in roots])
    with uncounted_reads():
        summaries = {
            f.path: _summary(await backend.aread(f.path, 0, 1)) for f in files[:MAX_MAP_FILES]
        }
    return render_map(roots, files, summaries, budget_tokens)
