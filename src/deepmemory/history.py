r"""Revision history of memory files: list, show, diff and restore.

A store that keeps history (:class:`~deepmemory.backends.protocol.SupportsHistory`:
``SQLiteStore``, ``PostgresStore`` and, for tests, ``InMemoryHistoryStore``) records a
numbered revision of a file on every write, edit and delete: the content as of that
change, when, and who made it (thread, user, assistant) when the run knows.
``StoreBackend`` tells the store who is writing; nothing else changes for the agent.

Each store answers ``history`` and ``revision`` itself. What follows from those is
written once here, in :class:`HistoryMixin`: ``diff`` (a unified diff of two
revisions, or of one and the file now) and ``restore`` (write a revision's content
back, recorded as a new ``restore`` revision, so a restore can be undone too).

Example:
    >>> from deepmemory.backends import StoreBackend
    >>> from deepmemory.stores import InMemoryHistoryStore
    >>> store = InMemoryHistoryStore()
    >>> files = StoreBackend(store=store, namespace=("memories", "alice"))
    >>> files.write("/notes.txt", "tea\n").error, files.edit("/notes.txt", "tea", "coffee").error
    (None, None)
    >>> [(r.number, r.op) for r in store.history(("memories", "alice"), "/notes.txt")]
    [(1, 'write'), (2, 'edit')]
    >>> print(store.diff(("memories", "alice"), "/notes.txt", 1, 2), end="")
    --- /notes.txt@1
    +++ /notes.txt@2
    @@ -1 +1 @@
    -tea
    +coffee
    >>> store.restore(("memories", "alice"), "/notes.txt", 1).number
    3
    >>> files.read("/notes.txt").lines
    ['tea']
"""

from __future__ import annotations

import difflib

from deepmemory.backends._base import Call, Op, run_async, run_sync
from deepmemory.backends._text import now_iso, split_lines
from deepmemory.backends.protocol import Author, Namespace, Revision, StoredFile
from deepmemory.errors import ConfigError, DeepMemoryError

__all__ = ["HistoryMixin", "RevisionNotFoundError"]


class RevisionNotFoundError(DeepMemoryError, LookupError):
    """A revision number that a file does not have (or that holds no content to restore)."""


def _numbers(revisions: list[Revision]) -> str:
    if not revisions:
        return "it has no recorded revisions"
    numbers = [r.number for r in revisions]
    if len(numbers) == 1:
        return f"its only revision is {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"its revisions are {numbers[0]} to {numbers[-1]}"
    return "its revisions are " + ", ".join(map(str, numbers))


def _text(file: StoredFile | None) -> list[str] | None:
    """The lines a diff compares (a missing file has none); ``None`` for a binary file."""
    if file is None:
        return []
    if file.encoding == "base64":
        return None
    return [line + "\n" for line in split_lines(file.content)]


class HistoryMixin:
    """``diff`` and ``restore`` for a store with ``history``, ``revision`` and the file writes.

    The store sets ``keep_revisions`` (``0``: recording is off, so nothing can be
    restored as a new revision).
    """

    @property
    def keep_revisions(self) -> int | None:
        """Revisions kept per file (``0``: history is off; ``None``: every one)."""
        raise NotImplementedError

    def _state(
        self, namespace: Namespace, key: str, number: int, name: str
    ) -> Op[StoredFile | None]:
        """The file as of revision ``number`` (``None`` after a delete); raise if unknown.

        ``name`` is the file as the caller knows it, for the message.
        """
        file: StoredFile | None = yield Call("revision", (namespace, key, number))
        if file is not None:
            return file
        revisions: list[Revision] = yield Call("history", (namespace, key))
        if any(r.number == number for r in revisions):
            return None  # a delete: the file did not exist as of that revision
        raise RevisionNotFoundError(
            f"{name!r} has no revision {number}: {_numbers(revisions)}. "
            "List them with history (deepmemory memory history PATH)."
        )

    def _op_diff(
        self, namespace: Namespace, key: str, a: int, b: int | None, path: str | None
    ) -> Op[str]:
        name = path or key
        old = yield from self._state(namespace, key, a, name)
        if b is None:
            new: StoredFile | None = yield Call("file_get", (namespace, key))
        else:
            new = yield from self._state(namespace, key, b, name)
        before, after = _text(old), _text(new)
        labels = f"{name}@{a}", f"{name}@{b}" if b is not None else f"{name} (now)"
        if before is None or after is None:
            same = old is not None and new is not None and old.content == new.content
            return "" if same else f"Binary files {labels[0]} and {labels[1]} differ\n"
        lines = list(difflib.unified_diff(before, after, *labels))
        # A last line without a newline gets the marker diff(1) and patch(1) use.
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def _op_restore(
        self, namespace: Namespace, key: str, number: int, author: Author | None, name: str
    ) -> Op[Revision]:
        if self.keep_revisions == 0:
            raise ConfigError(
                "This store records no history (keep_revisions=0), so a restore could not "
                "be undone; open it with keep_revisions > 0 (or None) to restore."
            )
        old = yield from self._state(namespace, key, number, name)
        if old is None:
            raise RevisionNotFoundError(
                f"Revision {number} of {name!r} is its deletion, which holds no content; "
                f"restore the revision before it (see history)."
            )
        now = now_iso()
        # created_at is kept from the file if it exists (a blind write keeps it).
        file = StoredFile(old.content, old.encoding, old.created_at or now, now)
        yield Call(
            "file_put",
            (namespace, key, file),
            {"expected_version": None, "author": author, "op": "restore"},
        )
        revisions: list[Revision] = yield Call("history", (namespace, key))
        restored = [r for r in revisions if r.op == "restore"]
        return restored[-1]

    def diff(
        self,
        namespace: Namespace,
        key: str,
        a: int,
        b: int | None = None,
        *,
        path: str | None = None,
    ) -> str:
        """A unified diff of the file from revision ``a`` to revision ``b`` (``None``: now).

        Headers name the file ``path`` (default: ``key``) with the revision number. A
        deleted or missing file compares as empty; binary files only as the same or not.

        Raises:
            RevisionNotFoundError: the file has no revision ``a`` (or ``b``).
        """
        return run_sync(self._op_diff(namespace, key, a, b, path), self)

    async def adiff(
        self,
        namespace: Namespace,
        key: str,
        a: int,
        b: int | None = None,
        *,
        path: str | None = None,
    ) -> str:
        """Async ``diff``."""
        return await run_async(self._op_diff(namespace, key, a, b, path), self)

    def restore(
        self,
        namespace: Namespace,
        key: str,
        number: int,
        *,
        author: Author | None = None,
        path: str | None = None,
    ) -> Revision:
        """Make revision ``number``'s content the file's content; return the new revision.

        The restore is itself a revision (op ``restore``), so it can be undone the same
        way. A deleted file comes back by restoring the revision before its deletion.
        Messages name the file ``path`` (default: ``key``).

        Raises:
            RevisionNotFoundError: no such revision, or it is a deletion.
            ConfigError: the store records no history (``keep_revisions=0``).
        """
        return run_sync(self._op_restore(namespace, key, number, author, path or key), self)

    async def arestore(
        self,
        namespace: Namespace,
        key: str,
        number: int,
        *,
        author: Author | None = None,
        path: str | None = None,
    ) -> Revision:
        """Async ``restore``."""
        op = self._op_restore(namespace, key, number, author, path or key)
        return await run_async(op, self)
