"""The baseline: a store-backed file backend in the style of the reference harness.

This is how a generic ``StoreBackend`` over *any* LangGraph ``BaseStore`` answers
file queries when the store knows nothing about files (LangChain ``deepagents`` works
this way): every listing, glob and grep pages through the **whole namespace** with
``store.search(namespace, limit=100, offset=k)`` (``OFFSET`` paging, ``k`` = 0, 100,
200, ... until a short page), loads every item value (the full file text) into Python
and filters there. Single-file operations use ``get``/``put``: ``read`` is one ``get``,
``write`` a ``get`` (to keep ``created_at``) then a ``put``, ``edit`` a ``get``, a
replace in Python, then a ``put``.

Written for the benchmark only (not copied from any harness); the results are plain
lists and tuples so the timings measure the store round trips and the Python
filtering, not result classes. Glob patterns are matched with deepmemory's own glob
compiler so that both sides answer the same question with the same result set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import BaseStore, Item

from deepmemory.backends._match import compile_glob, fullmatch

PAGE_SIZE = 100


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _below(key: str, base: str) -> str | None:
    """``key`` relative to directory ``base`` (``/`` or ``/a/b``), or None if outside."""
    prefix = "/" if base == "/" else base.rstrip("/") + "/"
    return key[len(prefix) :] if key.startswith(prefix) else None


class PagingStoreBackend:
    """ls/glob/grep by OFFSET-paging the whole namespace; read/write/edit by get/put."""

    def __init__(self, store: BaseStore, namespace: tuple[str, ...], page_size: int = PAGE_SIZE):
        self.store = store
        self.namespace = namespace
        self.page_size = page_size

    # -- the whole namespace, one page at a time -------------------------------------

    def _all_items(self) -> list[Item]:
        items: list[Item] = []
        offset = 0
        while True:
            page = self.store.search(self.namespace, limit=self.page_size, offset=offset)
            items.extend(page)
            if len(page) < self.page_size:
                return items
            offset += self.page_size

    @staticmethod
    def _content(item: Item) -> str | None:
        """The text of a file item, or None for binary or malformed items."""
        value = item.value
        content = value.get("content")
        if value.get("encoding", "utf-8") != "utf-8" or not isinstance(content, str):
            return None
        return content

    # -- searches: page through everything, filter in Python --------------------------

    def ls(self, path: str) -> list[dict[str, Any]]:
        """Direct children of ``path``: files (with size, modified_at) and directories."""
        files: list[dict[str, Any]] = []
        dirs: set[str] = set()
        base = path.rstrip("/") or "/"
        prefix = "/" if base == "/" else base + "/"
        for item in self._all_items():
            rel = _below(item.key, base)
            if not rel:
                continue
            head, sep, _ = rel.partition("/")
            if sep:
                dirs.add(prefix + head + "/")
                continue
            content = item.value.get("content", "")
            files.append(
                {
                    "path": item.key,
                    "is_dir": False,
                    "size": len(str(content).encode("utf-8")),
                    "modified_at": item.value.get("modified_at", ""),
                }
            )
        entries = files + [{"path": d, "is_dir": True} for d in dirs]
        return sorted(entries, key=lambda e: e["path"])

    def glob(self, pattern: str, path: str = "/") -> list[dict[str, Any]]:
        """Files below ``path`` whose relative path matches the glob ``pattern``."""
        base = path.rstrip("/") or "/"
        query = compile_glob(pattern, base)
        found = []
        for item in self._all_items():
            rel = _below(item.key, base)
            if rel and fullmatch(query.regex, rel):
                content = item.value.get("content", "")
                found.append({"path": item.key, "size": len(str(content).encode("utf-8"))})
        return sorted(found, key=lambda e: e["path"])

    def grep(self, literal: str, path: str = "/") -> list[tuple[str, int, str]]:
        """``(path, line number, line)`` of every line containing ``literal`` below ``path``."""
        base = path.rstrip("/") or "/"
        matches = []
        for item in self._all_items():
            content = self._content(item)
            if content is None or _below(item.key, base) is None or literal not in content:
                continue
            for number, line in enumerate(content.splitlines(), start=1):
                if literal in line:
                    matches.append((item.key, number, line))
        return sorted(matches)

    # -- single files: get / put -------------------------------------------------------

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> list[str]:
        """Lines ``offset`` .. ``offset + limit`` of a text file."""
        item = self.store.get(self.namespace, file_path)
        if item is None:
            raise FileNotFoundError(file_path)
        content = self._content(item)
        if content is None:
            raise ValueError(f"{file_path} is not a text file")
        return content.splitlines()[offset : offset + limit]

    def write(self, file_path: str, content: str) -> None:
        """Create or replace a text file, keeping ``created_at`` of an existing one."""
        now = _now()
        old = self.store.get(self.namespace, file_path)
        created = old.value.get("created_at", now) if old is not None else now
        value = {"content": content, "encoding": "utf-8", "created_at": created, "modified_at": now}
        self.store.put(self.namespace, file_path, value)

    def edit(self, file_path: str, old: str, new: str) -> int:
        """Replace the one occurrence of ``old``; return the number of occurrences replaced."""
        item = self.store.get(self.namespace, file_path)
        if item is None:
            raise FileNotFoundError(file_path)
        content = self._content(item)
        if content is None:
            raise ValueError(f"{file_path} is not a text file")
        count = content.count(old)
        if count != 1:
            raise ValueError(f"{old!r} occurs {count} times in {file_path}")
        value = dict(item.value)
        value["content"] = content.replace(old, new, 1)
        value["modified_at"] = _now()
        self.store.put(self.namespace, file_path, value)
        return 1
