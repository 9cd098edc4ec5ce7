"""The file operations, written once over a small repository interface.

Every backend (state, store, filesystem) is this class plus a *repository*: an object
with the :class:`~deepmemory.backends.protocol.SupportsFileQueries` methods
(``file_get``, ``file_put``, ``file_list_dir``, ...) and their ``a``-prefixed twins.
Validation, error messages, line windows, edit semantics and the mapping between
virtual paths and storage keys live here only, so every backend behaves alike and a
fix lands everywhere at once.

Operations are generators (see ``_base``): each ``yield Call(...)`` is one repository
call, driven synchronously by ``run_sync`` and asynchronously by ``run_async``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from deepmemory import errors, paths
from deepmemory.backends import _match, _scan
from deepmemory.backends._base import (
    BACKOFF,
    BaseBackend,
    Call,
    Op,
    run_async,
    run_sync,
)
from deepmemory.backends._checks import edit_args, move_args, read_args, write_args
from deepmemory.backends._match import PatternError, check_grep_pattern, compile_glob
from deepmemory.backends._text import (
    count_and_replace,
    file_from_bytes,
    file_to_bytes,
    now_iso,
    split_lines,
    stored_size,
)
from deepmemory.backends.protocol import (
    DEFAULT_READ_LIMIT,
    Author,
    DeleteResult,
    DownloadResult,
    EditResult,
    FileInfo,
    GlobResult,
    GrepMatch,
    GrepResult,
    LineWindow,
    LsResult,
    MoveResult,
    Namespace,
    Passage,
    ReadResult,
    RecallResult,
    RecentFile,
    RecentResult,
    RevisionOp,
    StoredFile,
    SupportsHistory,
    SupportsInPlaceWrites,
    SupportsLineWindows,
    SupportsMove,
    SupportsRecentFiles,
    UploadResult,
    WriteResult,
    implements,
)

# The longest query recall takes.
MAX_QUERY_CHARS = 2000

# Compare-and-swap retries for an edit racing other writers of the same file.
MAX_EDIT_ATTEMPTS = 200


class FileOpsBackend(BaseBackend):
    """A backend whose operations run against a repository (see module docstring).

    Subclasses implement ``_repo()`` returning ``(repository, namespace)``, and may
    override ``_finish`` to attach state updates to results.
    """

    # Whether file_is_dir is cheap (an index lookup), so write can refuse directories.
    _dir_check_is_cheap: bool = True

    def _repo(self) -> tuple[Any, Namespace]:
        raise NotImplementedError

    def _finish(self, result: Any, repo: Any) -> Any:
        return result

    def _author(self) -> Author | None:
        """Who is making this call's changes (``StoreBackend`` reads it from the run)."""
        return None

    def _attributed(self, repo: Any, op: RevisionOp | None = None) -> dict[str, Any]:
        """Keyword arguments telling a history-keeping repository who changed what.

        Empty for any other repository, so its calls stay exactly as they were.
        """
        if not implements(repo, SupportsHistory):
            return {}
        return {"author": self._author()} | ({"op": op} if op else {})

    def _sync(self, make: Any, *args: Any) -> Any:
        repo, ns = self._repo()
        try:
            return self._finish(run_sync(make(repo, ns, *args), repo), repo)
        except errors.InvalidPathError as exc:
            return _failed(make.__name__, args, self._refusal(exc))

    async def _async(self, make: Any, *args: Any) -> Any:
        repo, ns = self._repo()
        op = make(repo, ns, *args)
        try:
            try:  # ``run_async``, inlined: this is every async file call's path
                call = next(op)
                while True:
                    if call.name == BACKOFF:
                        await asyncio.sleep(call.args[0])
                        result = None
                    else:
                        result = await getattr(repo, "a" + call.name)(*call.args, **call.kwargs)
                    call = op.send(result)
            except StopIteration as stop:
                value = stop.value
            return self._finish(value, repo)
        except errors.InvalidPathError as exc:
            return _failed(make.__name__, args, self._refusal(exc))

    def _refusal(self, exc: errors.InvalidPathError) -> str:
        """The message of a refused path, naming the agent's path, never a storage key."""
        if isinstance(exc, errors.KeyRefusedError):
            return exc.message(self._vpath(exc.key))
        return str(exc)

    # -- mapping between search directories and the mount ------------------------------

    def _search_root(self, base: str) -> tuple[str, str] | None:
        """(directory key to search, prefix of relative paths) for a search under ``base``.

        ``base`` may lie above the mount (a search of ``/`` reaching a ``/memories``
        route): the repository then searches its root and each relative path is
        prefixed with the mount's position below ``base``. None if ``base`` is
        outside this backend.
        """
        if self._serves(base):
            return self._key(base), ""
        if paths.is_within(self.mount, base):
            rel = self.mount[len(base) :].lstrip("/") if base != "/" else self.mount[1:]
            return self._key(self.mount), rel + "/"
        return None

    def _info(self, info: FileInfo) -> FileInfo:
        path = self._vpath(info.path.rstrip("/")) + ("/" if info.is_dir else "")
        return FileInfo(path, info.is_dir, info.size, info.modified_at)

    # -- operations, written once -------------------------------------------------------

    def _op_ls(self, repo: Any, ns: Namespace, path: str) -> Op[LsResult]:
        try:
            vpath = paths.validate_dir(path)
        except errors.InvalidPathError as exc:
            return LsResult(str(path), error=str(exc))
        key = self._key(vpath)
        entries: list[FileInfo] = yield Call("file_list_dir", (ns, key))
        if not entries and vpath != self.mount:
            found = yield Call("file_get", (ns, key))
            return LsResult(
                vpath, error=errors.is_file(vpath) if found else errors.dir_not_found(vpath)
            )
        return LsResult(vpath, [self._info(e) for e in entries])

    @staticmethod
    def _indexed(repo: Any, ns: Namespace, keys: list[str]) -> Op[None]:
        """Where files are searched by meaning, index the files just written.

        A failing embedder never fails the write: the file stays unindexed until a
        later write or a reindex (``file_try_index`` says so in the log).
        """
        if getattr(repo, "recalls", False):
            for key in keys:
                yield Call("file_try_index", (ns, key))

    def _missing(self, ns: Namespace, key: str, vpath: str, tool: str | None) -> Op[str]:
        is_dir = yield Call("file_is_dir", (ns, key))
        return errors.is_directory(vpath, tool) if is_dir else errors.not_found(vpath)

    def _op_read(
        self, repo: Any, ns: Namespace, file_path: str, offset: int, limit: int
    ) -> Op[ReadResult]:
        vpath, problem = read_args(file_path, offset, limit)
        if problem:
            return ReadResult(vpath, error=problem)
        key = self._key(vpath)
        window: LineWindow | None
        if implements(repo, SupportsLineWindows):  # only the window travels
            window = yield Call("file_read_lines", (ns, key, offset, limit))
        else:
            file: StoredFile | None = yield Call("file_get", (ns, key))
            window = None if file is None else _window(file, offset, limit)
        if window is None:
            return ReadResult(vpath, error=(yield from self._missing(ns, key, vpath, "read_file")))
        size, total = window.size, window.total_lines
        if window.binary:
            return ReadResult(vpath, size=size, binary=True, error=errors.binary_file(vpath, size))
        if offset and offset >= total:
            return ReadResult(
                vpath,
                total_lines=total,
                size=size,
                error=errors.offset_past_end(vpath, offset, total),
            )
        # A copy: one window may answer several identical reads (``stores._coalesce``).
        return ReadResult(vpath, list(window.lines), offset, total, size)

    def _op_write(self, repo: Any, ns: Namespace, file_path: str, content: str) -> Op[WriteResult]:
        vpath, problem = write_args(file_path, content)
        if problem:
            return WriteResult(vpath, error=problem)
        if vpath == self.mount:  # the top of this storage is a directory, never a file
            return WriteResult(vpath, error=errors.is_directory(vpath, "write_file"))
        key = self._key(vpath)
        now = now_iso()
        file = StoredFile(content, "utf-8", now, now)
        if implements(repo, SupportsInPlaceWrites):  # the directory check is in the write
            if (yield Call("file_write", (ns, key, file), self._attributed(repo, "write"))) is None:
                return WriteResult(vpath, error=errors.is_directory(vpath, "write_file"))
            yield from self._indexed(repo, ns, [key])
            return WriteResult(vpath)
        if self._dir_check_is_cheap and (yield Call("file_is_dir", (ns, key))):
            return WriteResult(vpath, error=errors.is_directory(vpath, "write_file"))
        kwargs = {"expected_version": None, **self._attributed(repo, "write")}
        yield Call("file_put", (ns, key, file), kwargs)
        yield from self._indexed(repo, ns, [key])
        return WriteResult(vpath)

    def _op_edit(
        self,
        repo: Any,
        ns: Namespace,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool,
    ) -> Op[EditResult]:
        vpath, problem = edit_args(file_path, old_string, new_string)
        if problem:
            return EditResult(vpath, error=problem)
        key = self._key(vpath)
        if (
            not replace_all
            and implements(repo, SupportsInPlaceWrites)
            and "\x00" not in old_string + new_string
        ):
            # The common case in one statement; anything else falls through to say why.
            edit = (ns, key, old_string, new_string, now_iso())
            if (yield Call("file_edit", edit, self._attributed(repo, "edit"))) is not None:
                yield from self._indexed(repo, ns, [key])
                return EditResult(vpath, occurrences=1)
        for attempt in range(MAX_EDIT_ATTEMPTS):
            file: StoredFile | None = yield Call("file_get", (ns, key))
            if file is None:
                return EditResult(
                    vpath, error=(yield from self._missing(ns, key, vpath, "edit_file"))
                )
            if file.encoding == "base64":
                return EditResult(vpath, error=errors.binary_file(vpath, stored_size(file)))
            count, text = count_and_replace(file.content, old_string, new_string, replace_all)
            if count == 0:
                msg = (
                    errors.conflict(vpath)
                    if attempt
                    else errors.string_not_found(vpath, old_string)
                )
                return EditResult(vpath, error=msg)
            if count > 1 and not replace_all:
                return EditResult(vpath, error=errors.string_not_unique(vpath, count))
            new = StoredFile(text, "utf-8", file.created_at, now_iso())
            # Compare-and-swap on the version read above, not get-then-blind-put.
            kwargs = {"expected_version": file.version, **self._attributed(repo, "edit")}
            landed = yield Call("file_put", (ns, key, new), kwargs)
            if file.version is None or landed is not None:
                yield from self._indexed(repo, ns, [key])
                return EditResult(vpath, occurrences=count)
            # Lost the race: back off with jitter so one writer cannot starve another.
            yield Call(BACKOFF, (min(0.05, 0.001 * 2 ** min(attempt, 6)) * random.random(),))
        return EditResult(vpath, error=errors.conflict(vpath))

    def _op_delete(self, repo: Any, ns: Namespace, path: str) -> Op[DeleteResult]:
        try:
            vpath = paths.validate(path)
        except errors.InvalidPathError as exc:
            return DeleteResult(str(path), error=str(exc))
        if vpath == self.mount:
            return DeleteResult(vpath, error=errors.delete_top(vpath))
        keys: list[str] = yield Call(
            "file_delete_tree", (ns, self._key(vpath)), self._attributed(repo)
        )
        if not keys:
            return DeleteResult(vpath, error=errors.not_found(vpath))
        return DeleteResult(vpath, sorted(self._vpath(k) for k in keys))

    def _op_move(self, repo: Any, ns: Namespace, old_path: str, new_path: str) -> Op[MoveResult]:
        old, new, problem = move_args(self.mount, old_path, new_path)
        if problem:
            return MoveResult(old, new, error=problem)
        key, new_key = self._key(old), self._key(new)
        if implements(repo, SupportsMove):
            moved = yield Call("file_move", (ns, key, new_key), self._attributed(repo))
        else:
            moved = yield from self._move_by_copy(repo, ns, key, new_key)
        if moved is None:
            return MoveResult(old, new, error=errors.already_exists(new))
        if not moved:
            return MoveResult(old, new, error=errors.not_found(old))
        return MoveResult(old, new, [(self._vpath(a), self._vpath(b)) for a, b in moved])

    def _move_by_copy(
        self, repo: Any, ns: Namespace, key: str, new_key: str
    ) -> Op[list[tuple[str, str]] | None]:
        """``file_move`` for a repository without it: copy each file, then delete the old.

        Not atomic: a failure half-way leaves both copies, never neither.
        """
        sources: list[tuple[str, StoredFile]] = []
        single: StoredFile | None = yield Call("file_get", (ns, key))
        if single is not None:
            sources.append((key, single))
        below: list[FileInfo] = yield Call("file_glob", (ns, key, ".*"))
        for info in below:
            file = yield Call("file_get", (ns, info.path))
            if file is not None:
                sources.append((info.path, file))
        if not sources:
            return []
        if (yield Call("file_get", (ns, new_key))) is not None or (
            yield Call("file_is_dir", (ns, new_key))
        ):
            return None
        moved = []
        put = {"expected_version": 0, **self._attributed(repo, "move")}
        for source, file in sources:
            target = new_key + source[len(key) :]
            if (yield Call("file_put", (ns, target, file), put)) is None:
                return None  # created meanwhile: what was copied stays in both places
            moved.append((source, target))
        yield Call("file_delete_tree", (ns, key), self._attributed(repo))
        return sorted(moved)

    def _op_recall(
        self, repo: Any, ns: Namespace, query: str, path: str | None, limit: int
    ) -> Op[RecallResult]:
        if not isinstance(query, str) or not query.strip():
            return RecallResult(str(query), error="Error: give a query: what to look for.")
        if len(query) > MAX_QUERY_CHARS:
            return RecallResult(
                query[:50], error=f"Error: the query is over {MAX_QUERY_CHARS} characters."
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
            return RecallResult(query, error=f"Error: limit must be 1 to 50, not {limit!r}.")
        base = paths.validate_dir(path)
        root = self._search_root(base)
        if root is None or not getattr(repo, "recalls", False):
            return RecallResult(query)
        dir_key, _ = root
        found, pending = yield Call("file_passages", (ns, dir_key, query, limit))
        passages = [
            Passage(self._vpath(f.key), f.start_line, f.end_line, f.score, f.text)
            for f in found
            if paths.is_within(self._vpath(f.key), base)
        ]
        unindexed = [self._vpath(k) for k in pending if paths.is_within(self._vpath(k), base)]
        return RecallResult(query, passages, unindexed)

    def _op_glob(self, repo: Any, ns: Namespace, pattern: str, path: str | None) -> Op[GlobResult]:
        try:
            base = paths.validate_dir(path)
            query = compile_glob(pattern, base)
        except (errors.InvalidPathError, PatternError) as exc:
            return GlobResult(str(pattern), error=str(exc))
        root = self._search_root(base)
        if root is None:
            return GlobResult(pattern)
        dir_key, prefix = root
        files: list[FileInfo] = yield Call(
            "file_glob", (ns, dir_key, query.regex), {"rel_prefix": prefix}
        )
        return GlobResult(pattern, [self._info(f) for f in files])

    def _op_grep(
        self, repo: Any, ns: Namespace, pattern: str, path: str | None, glob: str | None
    ) -> Op[GrepResult]:
        problem = check_grep_pattern(pattern)
        if problem:
            return GrepResult(str(pattern), error=problem)
        try:
            base = paths.validate_dir(path)
            glob_regex = None
            if glob:
                glob_regex = compile_glob(glob, base).regex
        except (errors.InvalidPathError, PatternError) as exc:
            return GrepResult(pattern, error=str(exc))
        root = self._search_root(base)
        if root is None:
            return GrepResult(pattern)
        dir_key, prefix = root
        if not prefix and base != self.mount:
            single: StoredFile | None = yield Call("file_get", (ns, dir_key))
            if single is not None:
                return _bounded(pattern, _scan.matching_lines(base, single, pattern))
        matches: list[GrepMatch] = yield Call(
            "file_grep", (ns, dir_key, pattern, glob_regex), {"rel_prefix": prefix}
        )
        return _bounded(pattern, [GrepMatch(self._vpath(m.path), m.line, m.text) for m in matches])

    def _op_recent(self, repo: Any, ns: Namespace, path: str, limit: int) -> Op[RecentResult]:
        try:
            vpath = paths.validate_dir(path)
        except errors.InvalidPathError as exc:
            return RecentResult(str(path), error=str(exc))
        key = self._key(vpath)
        if implements(repo, SupportsRecentFiles):  # one query, whatever the memory holds
            found: RecentResult = yield Call("file_recent", (ns, key, limit))
        else:
            found = yield from self._recent_by_listing(repo, ns, key, limit)
        files = [replace(f, path=self._vpath(f.path)) for f in found.files]
        return RecentResult(vpath, files, found.total, found.total_capped)

    @staticmethod
    def _recent_by_listing(repo: Any, ns: Namespace, key: str, limit: int) -> Op[RecentResult]:
        """``file_recent`` for a repository without it: list every file, read the newest."""
        every: list[FileInfo] = yield Call("file_glob", (ns, key, ".*"))
        newest = sorted(every, key=lambda f: f.modified_at or "", reverse=True)[:limit]
        files = []
        for info in newest:
            window: LineWindow | None
            if implements(repo, SupportsLineWindows):
                window = yield Call("file_read_lines", (ns, info.path, 0, 1))
            else:
                file: StoredFile | None = yield Call("file_get", (ns, info.path))
                window = None if file is None else _window(file, 0, 1)
            if window is not None:
                first = None if window.binary else (window.lines or [""])[0]
                files.append(RecentFile(info.path, window.size, info.modified_at, first))
        return RecentResult(key, files, len(every))

    def _op_changes(self, repo: Any, ns: Namespace) -> Op[Any]:
        if not implements(repo, SupportsRecentFiles):
            return None
        return (yield Call("file_changes", (ns,)))

    def _op_upload(
        self, repo: Any, ns: Namespace, files: Sequence[tuple[str, bytes]]
    ) -> Op[list[UploadResult]]:
        results = []
        batch: list[tuple[str, StoredFile]] = []
        now = now_iso()
        for file_path, data in files:
            try:
                vpath = paths.validate_file(file_path)
            except errors.InvalidPathError as exc:
                results.append(UploadResult(str(file_path), error=str(exc)))
                continue
            if not isinstance(data, bytes | bytearray | memoryview):
                results.append(UploadResult(vpath, error="Error: upload content must be bytes."))
                continue
            if vpath == self.mount:
                results.append(UploadResult(vpath, error=errors.is_directory(vpath)))
                continue
            batch.append(
                (self._key(vpath), file_from_bytes(bytes(data), created_at=now, modified_at=now))
            )
            results.append(UploadResult(vpath))
        if hasattr(repo, "file_put_many"):
            # One transaction for the whole batch where the repository offers it.
            yield Call("file_put_many", (ns, batch), self._attributed(repo))
        else:
            kwargs = {"expected_version": None, **self._attributed(repo, "write")}
            for key, file in batch:
                yield Call("file_put", (ns, key, file), kwargs)
        yield from self._indexed(repo, ns, [key for key, _ in batch])
        return results

    def _op_download(
        self, repo: Any, ns: Namespace, file_paths: Sequence[str]
    ) -> Op[list[DownloadResult]]:
        results = []
        for file_path in file_paths:
            try:
                vpath = paths.validate_file(file_path)
            except errors.InvalidPathError as exc:
                results.append(DownloadResult(str(file_path), error=str(exc)))
                continue
            key = self._key(vpath)
            file: StoredFile | None = yield Call("file_get", (ns, key))
            if file is None:
                error = yield from self._missing(ns, key, vpath, None)
                results.append(DownloadResult(vpath, error=error))
            else:
                results.append(DownloadResult(vpath, file_to_bytes(file)))
        return results

    # -- the public methods: sync and async twins, one line each -----------------------

    def ls(self, path: str = "/") -> LsResult:
        """List the direct children of a directory."""
        return self._sync(self._op_ls, path)  # type: ignore[no-any-return]

    async def als(self, path: str = "/") -> LsResult:
        """Async ``ls``."""
        return await self._async(self._op_ls, path)  # type: ignore[no-any-return]

    def read(self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT) -> ReadResult:
        """Read up to ``limit`` lines starting at 0-based line ``offset``."""
        return self._sync(self._op_read, file_path, offset, limit)  # type: ignore[no-any-return]

    async def aread(
        self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> ReadResult:
        """Async ``read``."""
        return await self._async(self._op_read, file_path, offset, limit)  # type: ignore[no-any-return]

    def write(self, file_path: str, content: str) -> WriteResult:
        """Create or replace a text file."""
        return self._sync(self._op_write, file_path, content)  # type: ignore[no-any-return]

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        """Async ``write``."""
        return await self._async(self._op_write, file_path, content)  # type: ignore[no-any-return]

    def edit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Replace an exact string (once, or every occurrence with ``replace_all``)."""
        return self._sync(self._op_edit, file_path, old_string, new_string, replace_all)  # type: ignore[no-any-return]

    async def aedit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Async ``edit``."""
        return await self._async(self._op_edit, file_path, old_string, new_string, replace_all)  # type: ignore[no-any-return]

    def delete(self, path: str) -> DeleteResult:
        """Delete a file, or a directory with everything below it."""
        return self._sync(self._op_delete, path)  # type: ignore[no-any-return]

    async def adelete(self, path: str) -> DeleteResult:
        """Async ``delete``."""
        return await self._async(self._op_delete, path)  # type: ignore[no-any-return]

    def move(self, old_path: str, new_path: str) -> MoveResult:
        """Move a file, or a directory with everything below it; nothing is replaced."""
        return self._sync(self._op_move, old_path, new_path)  # type: ignore[no-any-return]

    async def amove(self, old_path: str, new_path: str) -> MoveResult:
        """Async ``move``."""
        return await self._async(self._op_move, old_path, new_path)  # type: ignore[no-any-return]

    def recalls(self) -> bool:
        """Whether ``recall`` searches anything here (a store with an embedder)."""
        repo, _ = self._repo()
        return bool(getattr(repo, "recalls", False))

    def recall(self, query: str, path: str | None = None, limit: int = 5) -> RecallResult:
        """The passages below ``path`` closest in meaning to ``query``, best first."""
        try:
            return self._sync(self._op_recall, query, path, limit)  # type: ignore[no-any-return]
        except Exception as exc:  # the embedder, asked for the query's vector
            return RecallResult(str(query), error=errors.recall_failed(exc))

    async def arecall(self, query: str, path: str | None = None, limit: int = 5) -> RecallResult:
        """Async ``recall``."""
        try:
            return await self._async(self._op_recall, query, path, limit)  # type: ignore[no-any-return]
        except Exception as exc:
            return RecallResult(str(query), error=errors.recall_failed(exc))

    def reindex(self, path: str | None = None) -> tuple[int, list[str]]:
        """Index for ``recall`` the files below ``path`` it does not cover yet.

        (Files indexed, paths whose embedding failed.) Nothing to do without an embedder.
        """
        repo, ns = self._repo()
        root = self._search_root(paths.validate_dir(path))
        if root is None or not getattr(repo, "recalls", False):
            return 0, []
        done, failed = repo.file_reindex(ns, root[0])
        return done, [self._vpath(k) for k in failed]

    async def areindex(self, path: str | None = None) -> tuple[int, list[str]]:
        """Async ``reindex``."""
        repo, ns = self._repo()
        root = self._search_root(paths.validate_dir(path))
        if root is None or not getattr(repo, "recalls", False):
            return 0, []
        done, failed = await repo.afile_reindex(ns, root[0])
        return done, [self._vpath(k) for k in failed]

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Files under ``path`` matching a glob pattern."""
        return self._sync(self._op_glob, pattern, path)  # type: ignore[no-any-return]

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Async ``glob``."""
        return await self._async(self._op_glob, pattern, path)  # type: ignore[no-any-return]

    def grep(self, pattern: str, path: str | None = None, glob: str | None = None) -> GrepResult:
        """Lines containing the literal ``pattern`` under ``path`` (a directory or a file)."""
        return self._sync(self._op_grep, pattern, path, glob)  # type: ignore[no-any-return]

    async def agrep(
        self, pattern: str, path: str | None = None, glob: str | None = None
    ) -> GrepResult:
        """Async ``grep``."""
        return await self._async(self._op_grep, pattern, path, glob)  # type: ignore[no-any-return]

    def recent(self, path: str, limit: int) -> RecentResult:
        """The ``limit`` files below ``path`` changed last, newest first, and how many exist."""
        return self._sync(self._op_recent, path, limit)  # type: ignore[no-any-return]

    async def arecent(self, path: str, limit: int) -> RecentResult:
        """Async ``recent``."""
        return await self._async(self._op_recent, path, limit)  # type: ignore[no-any-return]

    def changes(self, path: str = "/") -> Any:
        """A token that differs after any change to this backend's files; ``None``: unknown.

        The token covers every file of the backend, whatever ``path`` (given for the
        same call as ``CompositeBackend.changes``). Only repositories that track
        changes cheaply give one (``SupportsRecentFiles``).
        """
        repo, ns = self._repo()
        return run_sync(self._op_changes(repo, ns), repo)

    async def achanges(self, path: str = "/") -> Any:
        """Async ``changes``."""
        repo, ns = self._repo()
        return await run_async(self._op_changes(repo, ns), repo)

    def upload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Store files byte-exact (UTF-8 as text, anything else as binary)."""
        return self._sync(self._op_upload, files)  # type: ignore[no-any-return]

    async def aupload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Async ``upload_files``."""
        return await self._async(self._op_upload, files)  # type: ignore[no-any-return]

    def download_files(self, paths: Sequence[str]) -> list[DownloadResult]:
        """The exact bytes of each file."""
        return self._sync(self._op_download, paths)  # type: ignore[no-any-return]

    async def adownload_files(self, paths: Sequence[str]) -> list[DownloadResult]:
        """Async ``download_files``."""
        return await self._async(self._op_download, paths)  # type: ignore[no-any-return]


_RESULTS: dict[str, Any] = {
    "_op_ls": LsResult,
    "_op_read": ReadResult,
    "_op_write": WriteResult,
    "_op_edit": EditResult,
    "_op_delete": DeleteResult,
    "_op_move": MoveResult,
    "_op_recall": RecallResult,
    "_op_glob": GlobResult,
    "_op_grep": GrepResult,
    "_op_recent": RecentResult,
}


def _window(file: StoredFile, offset: int, limit: int) -> LineWindow:
    """The lines ``read`` shows of a whole stored file."""
    if file.encoding == "base64":
        return LineWindow([], 0, stored_size(file), binary=True)
    lines = split_lines(file.content)
    return LineWindow(lines[offset : offset + limit], len(lines), stored_size(file))


def _failed(op_name: str, args: tuple[Any, ...], message: str) -> Any:
    """The result of an operation a repository refused (a path it found unsafe)."""
    if op_name == "_op_upload":
        return [UploadResult(str(f[0]), error=message) for f in args[0]]
    if op_name == "_op_download":
        return [DownloadResult(str(p), error=message) for p in args[0]]
    return _RESULTS[op_name](str(args[0]), error=message)


def _bounded(pattern: str, matches: list[GrepMatch]) -> GrepResult:
    """At most ``MAX_GREP_MATCHES`` lines, saying when there were more."""
    limit = _match.MAX_GREP_MATCHES
    if len(matches) <= limit:
        return GrepResult(pattern, matches)
    return GrepResult(pattern, matches[:limit], truncated=True)
