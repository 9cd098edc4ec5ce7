"""What a backend is: the operations, their results, and the store fast path.

A backend serves a virtual filesystem of UTF-8 text files (binary files can be
uploaded and downloaded byte-exact). Paths are absolute virtual paths as the model
sees them; every method validates its path through :mod:`deepmemory.paths` first.

Outcomes the model must act on are returned, not raised: every result has ``error``
(``None`` on success) holding a message from :mod:`deepmemory.errors`. Results of
writes to thread state also carry ``files_update``, the change the file tools apply to
the graph's ``files`` channel.

Stores that understand files (our ``SQLiteStore`` and ``PostgresStore``) implement
:class:`SupportsFileQueries`; ``StoreBackend`` uses it whenever it is there and falls
back to plain ``BaseStore`` operations otherwise. Stores that keep a revision of every
change (:class:`SupportsHistory`) are also told who made it (an :class:`Author`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from deepmemory import clock

Namespace = tuple[str, ...]
Encoding = Literal["utf-8", "base64"]
RevisionOp = Literal["write", "edit", "delete", "restore", "move"]
FilesUpdate = dict[str, "dict[str, Any] | None"]

DEFAULT_READ_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One entry of a listing: a file, or a directory (``is_dir``, path ends with ``/``)."""

    path: str
    is_dir: bool = False
    size: int | None = None
    modified_at: str | None = None


@dataclass(slots=True)
class LsResult:
    """Direct children of a directory, sorted by path."""

    path: str
    entries: list[FileInfo] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class ReadResult:
    """A window of a text file's lines (``lines`` hold no line terminators)."""

    path: str
    lines: list[str] = field(default_factory=list)
    offset: int = 0
    total_lines: int = 0
    size: int = 0
    binary: bool = False
    error: str | None = None


@dataclass(slots=True)
class WriteResult:
    """Outcome of ``write``."""

    path: str
    error: str | None = None
    files_update: FilesUpdate | None = None


@dataclass(slots=True)
class EditResult:
    """Outcome of ``edit``: how many occurrences were replaced."""

    path: str
    occurrences: int = 0
    error: str | None = None
    files_update: FilesUpdate | None = None


@dataclass(slots=True)
class DeleteResult:
    """Outcome of ``delete``: the files removed (a directory removes everything below it)."""

    path: str
    deleted: list[str] = field(default_factory=list)
    error: str | None = None
    files_update: FilesUpdate | None = None


@dataclass(slots=True)
class MoveResult:
    """Outcome of ``move``: each file moved, as ``(old path, new path)``, sorted.

    A file moves alone; a directory moves with everything below it.
    """

    path: str
    new_path: str = ""
    moved: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    files_update: FilesUpdate | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage found by meaning: its file, lines (1-based, inclusive), score and text."""

    path: str
    start_line: int
    end_line: int
    score: float
    text: str


@dataclass(slots=True)
class RecallResult:
    """Passages closest in meaning to a query, best first.

    ``unindexed``: files not searched because their passages are not (yet) indexed.
    """

    query: str
    passages: list[Passage] = field(default_factory=list)
    unindexed: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class GlobResult:
    """Files whose path matches a pattern, sorted by path."""

    pattern: str
    files: list[FileInfo] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GrepMatch:
    """One line containing the searched text (``line`` is 1-based)."""

    path: str
    line: int
    text: str


@dataclass(slots=True)
class GrepResult:
    """Every matching line, sorted by path then line."""

    pattern: str
    matches: list[GrepMatch] = field(default_factory=list)
    error: str | None = None
    # More lines matched than a grep answers (``MAX_GREP_MATCHES``): ``matches`` holds
    # the first ones by path and line.
    truncated: bool = False


@dataclass(slots=True)
class UploadResult:
    """Outcome of uploading one file."""

    path: str
    error: str | None = None
    files_update: FilesUpdate | None = None


@dataclass(slots=True)
class DownloadResult:
    """One downloaded file, byte-exact, or an error."""

    path: str
    content: bytes | None = None
    error: str | None = None


@runtime_checkable
class Backend(Protocol):
    """The operations every backend offers, sync and async."""

    def ls(self, path: str = "/") -> LsResult: ...
    def read(
        self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> ReadResult: ...
    def write(self, file_path: str, content: str) -> WriteResult: ...
    def edit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult: ...
    def delete(self, path: str) -> DeleteResult: ...
    def move(self, old_path: str, new_path: str) -> MoveResult: ...
    def glob(self, pattern: str, path: str | None = None) -> GlobResult: ...
    def grep(
        self, pattern: str, path: str | None = None, glob: str | None = None
    ) -> GrepResult: ...
    def upload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]: ...
    def download_files(self, paths: Sequence[str]) -> list[DownloadResult]: ...

    async def als(self, path: str = "/") -> LsResult: ...
    async def aread(
        self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> ReadResult: ...
    async def awrite(self, file_path: str, content: str) -> WriteResult: ...
    async def aedit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult: ...
    async def adelete(self, path: str) -> DeleteResult: ...
    async def amove(self, old_path: str, new_path: str) -> MoveResult: ...
    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult: ...
    async def agrep(
        self, pattern: str, path: str | None = None, glob: str | None = None
    ) -> GrepResult: ...
    async def aupload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]: ...
    async def adownload_files(self, paths: Sequence[str]) -> list[DownloadResult]: ...


@dataclass(slots=True)
class StoredFile:
    """A file as a store holds it: the item value layout, plus the store's version.

    The value layout is ``{"content": str, "encoding": "utf-8" | "base64",
    "created_at": iso8601, "modified_at": iso8601}``, one item per file keyed by the
    file's path relative to the backend's mount point (``/notes.txt`` for
    ``/memories/notes.txt`` under a ``/memories/`` route). This is the layout other
    deep-agent harnesses use, so memories written by them read back here.
    """

    content: str
    encoding: Encoding = "utf-8"
    created_at: str = ""
    modified_at: str = ""
    version: int | None = None

    def to_value(self) -> dict[str, Any]:
        """The store item value."""
        return {
            "content": self.content,
            "encoding": self.encoding,
            "created_at": self.created_at,
            "modified_at": self.modified_at,
        }


@runtime_checkable
class SupportsFileQueries(Protocol):
    """A ``BaseStore`` that answers file queries inside its database.

    Keys are file paths relative to the backend mount (``/a/b.txt``); ``dir_key`` is a
    normalised directory path (``/`` or ``/a``, no trailing slash). Returned
    ``FileInfo``/``GrepMatch`` paths are keys (the backend maps them back to virtual
    paths). Only items whose namespace equals ``namespace`` exactly are visible:
    never a longer namespace that merely starts with it.
    """

    def file_get(self, namespace: Namespace, key: str) -> StoredFile | None:
        """The file at ``key``, with its version, or ``None``."""
        ...

    def file_put(
        self, namespace: Namespace, key: str, file: StoredFile, *, expected_version: int | None
    ) -> int | None:
        """Write ``file``; return the new version.

        ``expected_version=None`` writes unconditionally (create or replace, keeping
        ``created_at`` of an existing file). Otherwise the write happens only if the
        stored version still equals it (``0`` meaning "must not exist yet"), and
        ``None`` is returned when it does not: the caller re-reads and retries.
        """
        ...

    # Optional, used by upload_files when present:
    #   file_put_many(namespace, [(key, file), ...]) -> None, and afile_put_many:
    #   blind writes (as file_put with expected_version=None) in one transaction.

    def file_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]:
        """Direct children of ``dir_key``: files with size and modified_at, and directories.

        Directory entries have ``is_dir=True`` and a path ending in ``/``. File contents
        are never loaded. Sorted by path.
        """
        ...

    def file_is_dir(self, namespace: Namespace, dir_key: str) -> bool:
        """Whether any file exists below ``dir_key``."""
        ...

    def file_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]:
        """Files below ``dir_key`` whose ``rel_prefix + relative key`` fully matches ``regex``.

        The relative key is the key with ``dir_key + '/'`` removed (no leading slash;
        ``_match.relative_to``). ``regex`` comes from ``_match.glob_to_regex`` and uses
        only syntax shared by Python ``re`` and PostgreSQL ``~``. ``rel_prefix`` is
        non-empty when the search started above the backend's mount. Sorted by path.
        """
        ...

    def file_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]:
        """Lines containing ``literal`` (case-sensitive substring) in text files below ``dir_key``.

        ``glob_regex`` (if given) filters files as ``file_glob`` does, with the same
        ``rel_prefix``. Binary (base64) files never match. Lines split as
        ``deepmemory.backends._text.split_lines`` does. Sorted by path, then line.
        """
        ...

    def file_delete_tree(self, namespace: Namespace, key: str) -> list[str]:
        """Delete the file at ``key`` and every file below ``key + '/'``; return their keys."""
        ...

    async def afile_get(self, namespace: Namespace, key: str) -> StoredFile | None: ...
    async def afile_put(
        self, namespace: Namespace, key: str, file: StoredFile, *, expected_version: int | None
    ) -> int | None: ...
    async def afile_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]: ...
    async def afile_is_dir(self, namespace: Namespace, dir_key: str) -> bool: ...
    async def afile_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]: ...
    async def afile_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]: ...
    async def afile_delete_tree(self, namespace: Namespace, key: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Author:
    """Who changed a file, as far as the run knows: its thread, user and assistant."""

    thread_id: str | None = None
    user: str | None = None
    assistant: str | None = None


@dataclass(frozen=True, slots=True)
class Revision:
    """One recorded change of a file: numbered 1, 2, ... per file, never reused.

    ``size`` is the file's size in bytes after the change (``None`` for a delete);
    ``created_at`` is when the change was made (ISO 8601, UTC).
    """

    number: int
    op: RevisionOp
    created_at: str
    size: int | None = None
    thread_id: str | None = None
    user: str | None = None
    assistant: str | None = None


@dataclass(frozen=True, slots=True)
class FileUsage:
    """What pruning knows of a stored file: no content, only size and last use.

    ``last_used`` is ISO 8601 UTC: the last write, or the last read where reads refresh
    it. ``version`` lets a prune delete the file only if it has not changed since.
    """

    key: str
    size: int
    last_used: str
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Expiry:
    """Files not used for ``ttl`` are gone; reads count as use if ``refresh_on_read``.

    Without a ``ttl`` nothing is hidden, but reads are still recorded (for caps that
    evict the least recently used).

    Example:
        >>> from datetime import timedelta
        >>> Expiry(timedelta(days=90)).refresh_every
        datetime.timedelta(seconds=3600)
    """

    ttl: timedelta | None
    refresh_on_read: bool = True

    def cutoff(self) -> str | None:
        """Files last used before this instant (ISO 8601 UTC) have expired; None: none."""
        return None if self.ttl is None else clock.iso(clock.now() - self.ttl)

    @property
    def refresh_every(self) -> timedelta:
        """A read records itself only if the file's last use is older than this.

        1% of the TTL, at most an hour: most reads then write nothing, and a file
        expires at most that much earlier than ``ttl`` after its last read.
        """
        hour = timedelta(hours=1)
        return hour if self.ttl is None else min(self.ttl / 100, hour)


_READS_COUNT: ContextVar[bool] = ContextVar("deepmemory_reads_count", default=True)


def reads_count() -> bool:
    """Whether a read made now counts as a use of the file (see :func:`uncounted_reads`)."""
    return _READS_COUNT.get()


@contextmanager
def uncounted_reads() -> Iterator[None]:
    """Reads inside the block do not refresh any file's time to live.

    For reads the model did not ask for, such as the memory map's summaries: they
    must not keep every mapped file alive.
    """
    token = _READS_COUNT.set(False)
    try:
        yield
    finally:
        _READS_COUNT.reset(token)


@runtime_checkable
class SupportsExpiry(Protocol):
    """A file repository that can hide expired files and be pruned.

    Async twins: ``afile_usage``, ``afile_discard``.
    """

    def with_expiry(self, expiry: Expiry) -> Any:
        """This repository seeing only files used within ``expiry.ttl`` (a cheap view)."""
        ...

    def file_usage(self, namespace: Namespace) -> list[FileUsage]:
        """Every file of ``namespace`` (expired ones included), by key; no content read."""
        ...

    def file_discard(
        self, namespace: Namespace, victims: Sequence[FileUsage], *, author: Author | None = None
    ) -> list[str]:
        """Delete each victim unless it changed since it was listed; the keys deleted."""
        ...


@dataclass(frozen=True, slots=True)
class LineWindow:
    """Some lines of a text file, with the file's line count and size in bytes."""

    lines: list[str]
    total_lines: int
    size: int
    binary: bool = False


@runtime_checkable
class SupportsLineWindows(Protocol):
    """A file repository that reads a window of a file's lines without fetching all of it.

    Async twin: ``afile_read_lines``.
    """

    def file_read_lines(
        self, namespace: Namespace, key: str, offset: int, limit: int
    ) -> LineWindow | None:
        """Lines ``offset .. offset + limit`` (``_text.split_lines``), or ``None`` if missing.

        A binary file comes back with ``binary=True`` and no lines.
        """
        ...


@dataclass(frozen=True, slots=True)
class RecentFile:
    """A file as the memory map shows it: its path, size, last change and first line.

    ``first_line`` is ``None`` for a binary file and ``""`` for an empty one; it may be
    cut short (a store sends the first few hundred characters only).
    """

    path: str
    size: int
    modified_at: str | None
    first_line: str | None


@dataclass(slots=True)
class RecentResult:
    """The files most recently changed below a directory, newest first, and how many exist.

    ``total`` counts every file below ``path``, except that a store may stop counting
    at a cap: ``total_capped`` then says there are at least ``total``.
    """

    path: str
    files: list[RecentFile] = field(default_factory=list)
    total: int = 0
    total_capped: bool = False
    error: str | None = None


@runtime_checkable
class SupportsRecentFiles(Protocol):
    """A file repository that answers the memory map without reading the whole memory.

    Async twins: ``afile_recent``, ``afile_changes``.
    """

    def file_recent(self, namespace: Namespace, dir_key: str, limit: int) -> RecentResult:
        """The ``limit`` files below ``dir_key`` changed last (keys as paths), and a count.

        One query: the newest entries of an index and a count that may stop at a cap.
        """
        ...

    def file_changes(self, namespace: Namespace) -> Any:
        """A hashable token that differs after any write or delete in ``namespace``.

        Equal tokens mean the map built from ``file_recent`` is still current (for a
        repository with an expiry, also that no file can have expired meanwhile).
        """
        ...


@runtime_checkable
class SupportsInPlaceWrites(Protocol):
    """A file repository that writes and edits in one statement (one round trip).

    ``FileOpsBackend`` uses these for ``write`` and ``edit`` where a repository has
    them, instead of a directory check plus ``file_put`` and a read plus a
    compare-and-swap. With history they accept ``author`` and ``op`` as ``file_put``
    does. Async twins: ``afile_write``, ``afile_edit``.
    """

    def file_write(self, namespace: Namespace, key: str, file: StoredFile) -> int | None:
        """Create or replace ``file`` (as ``file_put`` with no expected version).

        The new version; ``None``, writing nothing, if ``key`` is a directory.
        """
        ...

    def file_edit(
        self, namespace: Namespace, key: str, old_string: str, new_string: str, modified_at: str
    ) -> int | None:
        """Replace the one occurrence of ``old_string`` in a text file; the new version.

        ``None``, changing nothing, when the file is missing, binary, or does not hold
        ``old_string`` exactly once: the caller reads it to say which. Never loses a
        concurrent update of the same file.
        """
        ...


@runtime_checkable
class SupportsMove(Protocol):
    """A file repository that moves a file or a directory in one step (one transaction).

    Without it, ``FileOpsBackend.move`` copies each file (``file_put`` with expected
    version 0, so nothing is replaced), then deletes the old tree. With history it
    accepts ``author`` as ``file_delete_tree`` does. Async twin: ``afile_move``.
    """

    def file_move(
        self, namespace: Namespace, key: str, new_key: str
    ) -> list[tuple[str, str]] | None:
        """Move the file at ``key`` and every file below it to ``new_key``, at once.

        Contents and times are kept. The ``(old key, new key)`` pairs moved, sorted
        (``[]``: nothing is at or below ``key``); ``None``, moving nothing, if anything
        exists at or below ``new_key``.
        """
        ...


@runtime_checkable
class SupportsHistory(Protocol):
    """A store that records a revision of a file on every write, edit and delete.

    Its ``file_put``, ``file_put_many`` and ``file_delete_tree`` (and their async
    twins) also accept ``author: Author | None``, and ``file_put`` ``op: RevisionOp``
    (``"write"`` unless given); ``StoreBackend`` passes them only to such stores.
    Revision ``number`` of a file holds its content as of that change (a delete holds
    none). See :mod:`deepmemory.history`.
    """

    def history(self, namespace: Namespace, key: str) -> list[Revision]:
        """Every recorded revision of the file at ``key``, oldest first."""
        ...

    def revision(self, namespace: Namespace, key: str, number: int) -> StoredFile | None:
        """The file as of revision ``number``; ``None`` if unknown or a delete."""
        ...

    def diff(
        self,
        namespace: Namespace,
        key: str,
        a: int,
        b: int | None = None,
        *,
        path: str | None = None,
    ) -> str:
        """A unified diff from revision ``a`` to ``b`` (``None``: now), naming the file ``path``."""
        ...

    def restore(
        self,
        namespace: Namespace,
        key: str,
        number: int,
        *,
        author: Author | None = None,
        path: str | None = None,
    ) -> Revision:
        """Write revision ``number``'s content back as a new ``restore`` revision.

        Its messages name the file ``path`` (default: ``key``).
        """
        ...

    def prune_history(self) -> int:
        """Apply the store's retention to every file now; return the revisions removed."""
        ...

    async def ahistory(self, namespace: Namespace, key: str) -> list[Revision]: ...
    async def arevision(self, namespace: Namespace, key: str, number: int) -> StoredFile | None: ...
    async def adiff(
        self,
        namespace: Namespace,
        key: str,
        a: int,
        b: int | None = None,
        *,
        path: str | None = None,
    ) -> str: ...
    async def arestore(
        self,
        namespace: Namespace,
        key: str,
        number: int,
        *,
        author: Author | None = None,
        path: str | None = None,
    ) -> Revision: ...
    async def aprune_history(self) -> int: ...


_KINDS: dict[tuple[type, type], bool] = {}


def implements(obj: object, protocol: type) -> bool:
    """``isinstance(obj, protocol)`` for a runtime-checkable protocol, cached per class.

    A protocol check inspects every method on each call (microseconds that showed in
    read latency); a class's answer does not change, so it is computed once.
    """
    key = (type(obj), protocol)
    found = _KINDS.get(key)
    if found is None:
        found = _KINDS[key] = isinstance(obj, protocol)
    return found
