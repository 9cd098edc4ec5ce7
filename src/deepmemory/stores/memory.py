"""InMemoryHistoryStore: LangGraph's ``InMemoryStore`` that keeps file history, for tests.

It records revisions exactly as ``SQLiteStore`` and ``PostgresStore`` do (numbers per
file that are never reused, the value as of each change, the author, retention on
write), in dictionaries guarded by one lock. File queries are ``StoreBackend``'s
scans over a plain store (``_GenericStoreFiles``); edits are not compare-and-swap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from langgraph.store.base import BaseStore, Op, PutOp, Result
from langgraph.store.memory import InMemoryStore

from deepmemory import clock
from deepmemory.backends._text import file_from_value, stored_size
from deepmemory.backends.protocol import (
    Author,
    FileUsage,
    Namespace,
    Revision,
    RevisionOp,
    StoredFile,
)
from deepmemory.backends.store import _GenericStoreFiles
from deepmemory.history import HistoryMixin
from deepmemory.stores._revisions import DEFAULT_KEEP_REVISIONS, Retention

_Entry = tuple[Revision, dict[str, Any] | None]


def _within(retention: Retention, entries: list[_Entry], head: int) -> list[_Entry]:
    """The revisions ``retention`` keeps of a file whose last number is ``head``."""
    keep, cutoff = retention.keep_revisions, retention.cutoff()
    return [
        (r, v)
        for r, v in entries
        if (keep is None or r.number > head - keep) and (cutoff is None or r.created_at >= cutoff)
    ]


class _Unrecorded(BaseStore):
    """The store's own operations without recording (the file methods record themselves)."""

    def __init__(self, store: InMemoryHistoryStore) -> None:
        self.store = store

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return InMemoryStore.batch(self.store, ops)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return InMemoryStore.batch(self.store, ops)


class InMemoryHistoryStore(HistoryMixin, _GenericStoreFiles, InMemoryStore):
    """An in-memory store with file history (``SupportsHistory``), for tests and examples.

    The file queries are ``StoreBackend``'s scans over a plain store; the writes also
    record revisions.

    Example:
        >>> store = InMemoryHistoryStore(keep_revisions=10)
        >>> store.put(("docs",), "/a.txt", {"content": "one"})
        >>> [r.op for r in store.history(("docs",), "/a.txt")]
        ['write']
    """

    def __init__(
        self,
        *,
        keep_revisions: int | None = DEFAULT_KEEP_REVISIONS,
        keep_days: float | None = None,
        **kwargs: Any,
    ) -> None:
        """An empty store; ``keep_revisions``/``keep_days`` as for ``SQLiteStore``."""
        InMemoryStore.__init__(self, **kwargs)
        # The file methods run the store's own operations unrecorded and record themselves.
        _GenericStoreFiles.__init__(self, _Unrecorded(self))
        self.retention = Retention(keep_revisions, keep_days)
        self._revisions: dict[tuple[Namespace, str], list[_Entry]] = {}
        self._heads: dict[tuple[Namespace, str], int] = {}
        self._history_lock = threading.RLock()

    @property
    def keep_revisions(self) -> int | None:
        """Revisions kept per file (``0``: history is off; ``None``: all)."""
        return self.retention.keep_revisions

    def _record(
        self,
        namespace: Namespace,
        key: str,
        op: RevisionOp,
        value: dict[str, Any] | None,
        author: Author | None,
    ) -> None:
        if not self.retention.records or not key.startswith("/"):
            return
        author = author or Author()
        ident = (namespace, key)
        number = self._heads[ident] = self._heads.get(ident, 0) + 1
        size = None if value is None else stored_size(file_from_value(value))
        now = clock.now_iso()
        revision = Revision(number, op, now, size, author.thread_id, author.user, author.assistant)
        kept = self._revisions.setdefault(ident, [])
        kept.append((revision, value))
        if op != "delete":  # A delete prunes nothing (see stores._revisions).
            kept[:] = _within(self.retention, kept, number)

    # -- LangGraph operations: a plain put of a file is a write of unknown authorship --

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run LangGraph store operations, recording puts of files."""
        ops = list(ops)
        with self._history_lock:
            existed = [
                isinstance(op, PutOp) and op.value is None and self.get(op.namespace, op.key)
                for op in ops
            ]
            results = InMemoryStore.batch(self, ops)
            for op, was in zip(ops, existed, strict=True):
                if isinstance(op, PutOp) and (op.value is not None or was):
                    op_name: RevisionOp = "write" if op.value is not None else "delete"
                    value = None if op.value is None else dict(op.value)
                    self._record(op.namespace, op.key, op_name, value, None)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async ``batch``."""
        return self.batch(ops)

    # -- the file writes, recorded (no compare-and-swap here) ----------------------------

    def file_put(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        *,
        expected_version: int | None,
        author: Author | None = None,
        op: RevisionOp = "write",
    ) -> int | None:
        """Write ``file`` and record revision ``op`` by ``author``."""
        with self._history_lock:
            put = _GenericStoreFiles.file_put
            version: int | None = put(self, namespace, key, file, expected_version=expected_version)
            self._record(namespace, key, op, file.to_value(), author)
        return version

    def file_put_many(
        self,
        namespace: Namespace,
        files: Sequence[tuple[str, StoredFile]],
        *,
        author: Author | None = None,
    ) -> None:
        """Write many files, each recorded as a ``write``."""
        for key, file in files:
            self.file_put(namespace, key, file, expected_version=None, author=author)

    def file_delete_tree(
        self, namespace: Namespace, key: str, *, author: Author | None = None
    ) -> list[str]:
        """Delete ``key`` and everything below it, recording a ``delete`` of each file."""
        with self._history_lock:
            keys: list[str] = _GenericStoreFiles.file_delete_tree(self, namespace, key)
            for deleted in keys:
                self._record(namespace, deleted, "delete", None, author)
        return keys

    def file_discard(
        self, namespace: Namespace, victims: Sequence[FileUsage], *, author: Author | None = None
    ) -> list[str]:
        """Delete each victim unless it changed since listed, recording a ``delete`` of each."""
        with self._history_lock:
            keys: list[str] = _GenericStoreFiles.file_discard(self, namespace, victims)
            for deleted in keys:
                self._record(namespace, deleted, "delete", None, author)
        return keys

    async def afile_discard(
        self, namespace: Namespace, victims: Sequence[FileUsage], *, author: Author | None = None
    ) -> list[str]:
        """Async ``file_discard``."""
        return self.file_discard(namespace, victims, author=author)

    # Nothing here waits on I/O: the async twins are the sync methods.

    async def afile_put(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        *,
        expected_version: int | None,
        author: Author | None = None,
        op: RevisionOp = "write",
    ) -> int | None:
        """Async ``file_put``."""
        return self.file_put(
            namespace, key, file, expected_version=expected_version, author=author, op=op
        )

    async def afile_put_many(
        self,
        namespace: Namespace,
        files: Sequence[tuple[str, StoredFile]],
        *,
        author: Author | None = None,
    ) -> None:
        """Async ``file_put_many``."""
        self.file_put_many(namespace, files, author=author)

    async def afile_delete_tree(
        self, namespace: Namespace, key: str, *, author: Author | None = None
    ) -> list[str]:
        """Async ``file_delete_tree``."""
        return self.file_delete_tree(namespace, key, author=author)

    # -- SupportsHistory (diff and restore come from HistoryMixin) -----------------------

    def history(self, namespace: Namespace, key: str) -> list[Revision]:
        """Every recorded revision of the file at ``key``, oldest first."""
        with self._history_lock:
            return [r for r, _ in self._revisions.get((namespace, key), [])]

    def revision(self, namespace: Namespace, key: str, number: int) -> StoredFile | None:
        """The file as of revision ``number``; ``None`` if there is none or it is a delete."""
        with self._history_lock:
            for r, value in self._revisions.get((namespace, key), []):
                if r.number == number and value is not None:
                    return file_from_value(value)
        return None

    def prune_history(self) -> int:
        """Delete every revision past retention; return how many."""
        removed = 0
        with self._history_lock:
            for ident, kept in self._revisions.items():
                before = len(kept)
                kept[:] = _within(self.retention, kept, self._heads[ident])
                removed += before - len(kept)
        return removed

    async def ahistory(self, namespace: Namespace, key: str) -> list[Revision]:
        """Async ``history``."""
        return self.history(namespace, key)

    async def arevision(self, namespace: Namespace, key: str, number: int) -> StoredFile | None:
        """Async ``revision``."""
        return self.revision(namespace, key, number)

    async def aprune_history(self) -> int:
        """Async ``prune_history``."""
        return self.prune_history()
