"""The memory map: what long-term memory holds, in the system prompt of every model call.

So the agent knows what it remembers without spending a tool call, the filesystem
middleware shows the files under each persistent route (outermost routes of a
``CompositeBackend`` that are not thread state): path, size and first line, which the
prompt asks the agent to keep as a one-line summary, most recently changed first.

Its cost follows what it shows, not what memory holds: each root is asked for its
``MAX_MAP_FILES`` newest files and a count (``recent``; on our stores one query on an
index), and the text is cached under the roots' change tokens (``changes``): a model
call after which nothing changed reuses it after one cheap lookup. Backends that
cannot tell whether anything changed (``changes()`` is ``None``) are mapped anew on
every call. The text stops at a character budget with a note to use ``ls``/``glob``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from deepmemory.backends._text import human_size
from deepmemory.backends.composite import CompositeBackend
from deepmemory.backends.protocol import RecentFile, RecentResult, uncounted_reads
from deepmemory.backends.state import StateBackend

MAX_MAP_FILES = 40
CHARS_PER_TOKEN = 4
MAX_SUMMARY_CHARS = 100
# Maps kept per middleware (one per tenant and budget seen lately).
CACHED_MAPS = 256


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


def _summary(file: RecentFile) -> str:
    if file.first_line is None:
        return "(binary)"
    line = file.first_line.strip()
    if not line:
        return "(empty)" if not file.size else ""
    return line if len(line) <= MAX_SUMMARY_CHARS else line[: MAX_SUMMARY_CHARS - 1] + "…"


def _count(total: int, capped: bool) -> str:
    return f"more than {total:,}" if capped else f"{total:,}"


def render_map(roots: list[str], results: list[RecentResult], budget_tokens: int) -> str:
    """The map's text: one line per file, cut at the budget with a note saying how to see more."""
    files = sorted(
        (f for r in results for f in r.files), key=lambda f: f.modified_at or "", reverse=True
    )
    total = sum(r.total for r in results)
    capped = any(r.total_capped for r in results)
    noun = "file" if total == 1 and not capped else "files"
    head = f"### What your long-term memory holds now ({_count(total, capped)} {noun})"
    if not files:
        return f"{head}\nNothing yet under {', '.join(roots)}."
    budget = budget_tokens * CHARS_PER_TOKEN
    lines = [head]
    used = len(head)
    shown = 0
    for file in files:
        summary = _summary(file)
        line = f"- {file.path} ({human_size(file.size)})" + (f": {summary}" if summary else "")
        if shown == MAX_MAP_FILES or used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    if capped or shown < total:
        rest = _count(total - shown, capped)
        lines.append(f"- ... and {rest} more files: use ls or glob on {roots[0]} to see them.")
    return "\n".join(lines)


class MapCache:
    """Memory maps by their roots' change tokens, least recently used dropped first."""

    def __init__(self, size: int = CACHED_MAPS) -> None:
        self.size = size
        self._maps: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()  # model calls of several threads share a middleware
        self.builds = 0  # maps built (not served from the cache), for tests and tuning

    def get(self, key: Hashable | None) -> str | None:
        """The map cached under ``key``, or ``None``."""
        if key is None:
            return None
        with self._lock:
            text = self._maps.get(key)
            if text is not None:
                self._maps.move_to_end(key)
            return text

    def put(self, key: Hashable | None, text: str) -> str:
        """Count a build of ``text`` and cache it under ``key`` (unless ``None``); return it."""
        with self._lock:
            self.builds += 1
            if key is not None:
                self._maps[key] = text
                self._maps.move_to_end(key)
                while len(self._maps) > self.size:
                    self._maps.popitem(last=False)
        return text


def _key(roots: list[str], budget_tokens: int, tokens: list[Any]) -> Hashable | None:
    if any(token is None for token in tokens):
        return None  # some backend cannot say whether it changed: always rebuild
    return (tuple(roots), budget_tokens, tuple(tokens))


def build_map(
    backend: Any, roots: list[str], budget_tokens: int, cache: MapCache | None = None
) -> str:
    """The memory map of ``roots`` (blocking I/O), from ``cache`` if nothing changed."""
    cache = MapCache() if cache is None else cache
    # Tokens first: a change made while the map is built leaves the next call a new token.
    key = _key(roots, budget_tokens, [backend.changes(root) for root in roots])
    cached = cache.get(key)
    if cached is not None:
        return cached
    with uncounted_reads():  # the map must not keep every mapped file from expiring
        results = [backend.recent(root, MAX_MAP_FILES) for root in roots]
    return cache.put(key, render_map(roots, _checked(results), budget_tokens))


async def abuild_map(
    backend: Any, roots: list[str], budget_tokens: int, cache: MapCache | None = None
) -> str:
    """Async ``build_map``."""
    cache = MapCache() if cache is None else cache
    key = _key(roots, budget_tokens, [await backend.achanges(root) for root in roots])
    cached = cache.get(key)
    if cached is not None:
        return cached
    with uncounted_reads():
        results = [await backend.arecent(root, MAX_MAP_FILES) for root in roots]
    return cache.put(key, render_map(roots, _checked(results), budget_tokens))


def _checked(results: list[RecentResult]) -> list[RecentResult]:
    """Results without errors (a root that cannot be listed just shows nothing)."""
    return [r for r in results if not r.error]
