"""deepagents' backends as routes of deepmemory's ``CompositeBackend``.

``DeepAgentsBackend(backend)`` makes any deepagents ``BackendProtocol`` (its
``FilesystemBackend``, ``LocalShellBackend``, a sandbox, a community backend) a
deepmemory backend, so users keep the storage they have next to our memory::

    CompositeBackend(
        default=StateBackend(),
        routes={
            "/memories/": StoreBackend(),
            "/workspace/": DeepAgentsBackend(FilesystemBackend(root_dir="/srv/ws")),
        },
    )

Mounted at ``/workspace``, the model's ``/workspace/src/app.py`` reaches the wrapped
backend as ``/src/app.py``, as deepagents' own ``CompositeBackend`` strips its route
prefixes. What the model sees is deepmemory's: paths are validated by our rules before
the wrapped backend gets them (``..``, control characters, over-long names never reach
it); results come back as our result types with the path the model wrote, in our
messages where the case is known (a missing file, a directory given as a file); glob
and grep mean what they mean on every other backend (the wrapped backend lists the
candidate files or lines, our matcher decides); and an exception raised inside the
wrapped backend, or an operation it does not implement, is an error result, never a
traceback for the model. Writes go straight to the wrapped backend: it keeps its own
guarantees (deepmemory's compare-and-swap, history and expiry are for our stores).

The wrapped backend may also be a factory (``lambda runtime: SomeBackend(runtime)``),
built once per tool call as deepagents builds its own. Operations are written once as
generators of calls on the wrapped backend (``backends._base``), driven by its sync
methods or by its ``a``-prefixed async ones.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

from deepagents.backends.protocol import BackendProtocol
from deepagents.backends.utils import EMPTY_CONTENT_WARNING

from deepmemory import errors, paths
from deepmemory.backends._base import BaseBackend, Call, Op, run_async, run_sync
from deepmemory.backends._checks import edit_args, move_args, read_args, write_args
from deepmemory.backends._match import PatternError, check_grep_pattern, compile_glob
from deepmemory.backends._text import split_lines
from deepmemory.backends.protocol import (
    DEFAULT_READ_LIMIT,
    DeleteResult,
    DownloadResult,
    EditResult,
    FileInfo,
    GlobResult,
    GrepMatch,
    GrepResult,
    LsResult,
    MoveResult,
    ReadResult,
    RecentFile,
    RecentResult,
    UploadResult,
    WriteResult,
)
from deepmemory.errors import ConfigError

__all__ = ["DeepAgentsBackend"]

Factory = Callable[[Any], BackendProtocol]

# How deepagents' backends word a read past the end, and a file they cannot decode.
_PAST_END = re.compile(r"offset (\d+) exceeds file length \((\d+) lines?\)")
_BINARY_SIGNS = ("codec can't decode", "Cannot edit binary")
# How they word an ambiguous edit, and an OS error naming host paths (never shown).
_NOT_UNIQUE = re.compile(r"appears (\d+) times")
_OS_ERROR = re.compile(r"(\[Errno \d+\] [^:'\"]+): '[^']*'(?: -> '[^']*')?")

# Bare patterns that, in deepagents' glob language, list every file at any depth:
# ``*`` every name not starting with a dot, ``.*`` the others.
_EVERY_FILE = ("*", ".*")


class DeepAgentsBackend(BaseBackend):
    """A deepagents backend serving a route (or the whole tree) of deepmemory.

    Args:
        backend: a deepagents ``BackendProtocol`` instance, or a factory called with
            each tool call's runtime that returns one.

    Raises:
        ConfigError: ``backend`` is neither, or it is a deepagents
            ``FilesystemBackend`` with ``virtual_mode=False`` (absolute paths would
            reach the whole host instead of its root directory).
    """

    def __init__(self, backend: BackendProtocol | Factory) -> None:
        if isinstance(backend, BackendProtocol):
            if getattr(backend, "virtual_mode", True) is False:
                raise ConfigError(
                    f"{type(backend).__name__}(virtual_mode=False) takes absolute paths as "
                    "host paths, so a route could reach any file on the machine. Build it "
                    "with virtual_mode=True (its root_dir is then the route's top)."
                )
            self._inner: BackendProtocol | None = backend
            self._factory: Factory | None = None
        elif callable(backend):
            self._inner, self._factory = None, backend
        else:
            raise ConfigError(
                "DeepAgentsBackend needs a deepagents backend (a BackendProtocol such as "
                "deepagents.backends.FilesystemBackend(root_dir=..., virtual_mode=True)) or "
                f"a factory taking the runtime and returning one; got {type(backend).__name__}."
            )

    def bind(self, runtime: Any) -> DeepAgentsBackend:
        """This backend for one tool call: a factory builds its backend here."""
        if self._factory is None:
            return self
        clone = copy.copy(self)
        clone._inner = self._factory(runtime)
        return clone

    @property
    def wrapped(self) -> BackendProtocol:
        """The deepagents backend answering (a factory's is built by ``bind``)."""
        if self._inner is None:
            raise ConfigError(
                "This DeepAgentsBackend was built from a factory, so it needs a runtime: "
                "call .bind(runtime) first (deepmemory's file tools do)."
            )
        return self._inner

    # -- drivers ----------------------------------------------------------------------------

    def _sync(self, make: Callable[..., Op[Any]], tool: str, *args: Any) -> Any:
        try:
            return run_sync(make(*args), self.wrapped)
        except Exception as exc:  # the model gets an error result, not a traceback
            return self._failed(tool, args, exc)

    async def _async(self, make: Callable[..., Op[Any]], tool: str, *args: Any) -> Any:
        try:
            return await run_async(make(*args), self.wrapped)
        except Exception as exc:
            return self._failed(tool, args, exc)

    def _failed(self, tool: str, args: tuple[Any, ...], exc: Exception) -> Any:
        if isinstance(exc, ConfigError):
            raise exc
        if isinstance(exc, _Refused):
            message = str(exc)
        elif isinstance(exc, NotImplementedError):
            message = (
                f"Error: {tool} is not available here: the storage behind "
                f"{self.mount!r} ({type(self.wrapped).__name__}) does not support it."
            )
        else:
            message = errors.tool_failed(tool, exc)
        first = args[0]
        if tool == "upload_files":
            return [UploadResult(str(f[0]), error=message) for f in first]
        if tool == "download_files":
            return [DownloadResult(str(p), error=message) for p in first]
        return _RESULTS[tool](str(first), error=message)

    # -- paths and messages ---------------------------------------------------------------

    def _said(self, message: str, key: str, vpath: str) -> str:
        """The wrapped backend's message, naming the path the model wrote (no host path)."""
        message = _OS_ERROR.sub(r"\1", message)
        if key == vpath:
            return message
        for quote in ("'", '"'):
            message = message.replace(f"{quote}{key}{quote}", f"{quote}{vpath}{quote}")
        return message

    @staticmethod
    def _missing(message: str, key: str) -> bool:
        """Whether the wrapped backend said that ``key`` does not exist."""
        return f"'{key}' not found" in message or message in ("file_not_found",)

    def _explained(self, message: str, key: str, vpath: str, tool: str) -> Op[str]:
        """Our message for a failure the wrapped backend reported, where the case is known.

        A missing path is checked for being a directory, as ours are; a file the wrapped
        backend could not decode is reported as binary, with its size.
        """
        past = _PAST_END.search(message)
        if past:
            return errors.offset_past_end(vpath, int(past[1]), int(past[2]))
        if any(sign in message for sign in _BINARY_SIGNS):
            (download,) = yield Call("download_files", ([key],))
            if download.content is not None:
                return errors.binary_file(vpath, len(download.content))
        if self._missing(message, key):
            if (yield from self._is_dir(key)):
                return errors.is_directory(vpath, tool)
            return errors.not_found(vpath)
        return self._said(message, key, vpath)

    def _is_dir(self, key: str) -> Op[bool]:
        """Whether the wrapped backend lists anything below ``key``."""
        if key == "/":
            return True
        listing = yield Call("ls", (key,))
        return not listing.error and bool(listing.entries)

    def _root(self, base: str) -> tuple[str, str] | None:
        """(wrapped directory to search, our directory it is) for a search of ``base``.

        ``base`` may lie above the mount (a search of ``/`` reaching this route): the
        wrapped backend's top is searched then. None if ``base`` is outside.
        """
        if self._serves(base):
            return self._key(base), base
        if paths.is_within(self.mount, base):
            return "/", self.mount
        return None

    def _vpath_of(self, inner_path: str, is_dir: bool = False) -> str:
        """Our path of a path the wrapped backend reported (a directory's ends with ``/``)."""
        vpath = self._vpath("/" + inner_path.strip("/"))
        return vpath + "/" if is_dir and vpath != "/" else vpath

    # -- operations -------------------------------------------------------------------------

    def _every_file(self, key: str) -> Op[list[dict[str, Any]]]:
        """Every file below wrapped directory ``key``, as the wrapped backend lists them."""
        found: dict[str, dict[str, Any]] = {}
        for pattern in _EVERY_FILE:
            result = yield Call("glob", (pattern, key))
            if result.error:
                raise _Refused(self._said(result.error, key, self._vpath(key)))
            if result.truncated:  # its own time or size budget: say so, never half an answer
                raise _Refused(
                    f"Error: the storage behind {self.mount!r} stopped listing "
                    f"{self._vpath(key)!r} early ({result.truncation_reason or 'its limit'}); "
                    "search a narrower directory."
                )
            for info in result.matches or []:
                if not info.get("is_dir"):
                    found[info["path"]] = dict(info)
        return list(found.values())

    def _op_ls(self, path: str) -> Op[LsResult]:
        try:
            vpath = paths.validate_dir(path)
        except errors.InvalidPathError as exc:
            return LsResult(str(path), error=str(exc))
        key = self._key(vpath)
        result = yield Call("ls", (key,))
        if not result.error and not result.entries and vpath != self.mount:
            # Key-value backends list a file or a missing directory as empty.
            probe = yield Call("read", (key, 0, 1))
            if probe.error is None:
                return LsResult(vpath, error=errors.is_file(vpath))
            return LsResult(vpath, error=errors.dir_not_found(vpath))
        if result.error:
            if "not_a_directory" in result.error:
                return LsResult(vpath, error=errors.is_file(vpath))
            if "not_found" in result.error or self._missing(result.error, key):
                if vpath == self.mount:
                    return LsResult(vpath)  # the route's top exists while empty
                return LsResult(vpath, error=errors.dir_not_found(vpath))
            return LsResult(vpath, error=self._said(result.error, key, vpath))
        entries = [
            FileInfo(
                self._vpath_of(e["path"], bool(e.get("is_dir"))),
                bool(e.get("is_dir")),
                None if e.get("is_dir") else e.get("size"),
                e.get("modified_at") or None,
            )
            for e in result.entries or []
        ]
        return LsResult(vpath, sorted(entries, key=lambda e: e.path))

    def _op_read(self, file_path: str, offset: int, limit: int) -> Op[ReadResult]:
        vpath, problem = read_args(file_path, offset, limit)
        if problem:
            return ReadResult(vpath, error=problem)
        key = self._key(vpath)
        result = yield Call("read", (key, offset, limit))
        if result.error:
            message = yield from self._explained(result.error, key, vpath, "read_file")
            return ReadResult(vpath, binary=" binary " in message, error=message)
        data = result.file_data
        if data is None:
            return ReadResult(vpath, offset=offset, total_lines=offset)
        content = data.get("content", "")
        if data.get("encoding") == "base64":
            try:
                size = len(base64.b64decode(content, validate=True))
            except (binascii.Error, ValueError):
                size = len(content) * 3 // 4
            return ReadResult(vpath, size=size, binary=True, error=errors.binary_file(vpath, size))
        if result.start_line is None and content == EMPTY_CONTENT_WARNING:
            return ReadResult(vpath)  # an empty file
        lines = split_lines(content)
        start = offset if result.start_line is None else result.start_line - 1
        total = result.total_lines if result.total_lines is not None else start + len(lines)
        return ReadResult(vpath, lines, start, total, len(content.encode("utf-8", "replace")))

    def _op_write(self, file_path: str, content: str) -> Op[WriteResult]:
        vpath, problem = write_args(file_path, content)
        if problem:
            return WriteResult(vpath, error=problem)
        key = self._key(vpath)
        result = yield Call("write", (key, content))
        if result.error:
            if "Is a directory" in result.error:
                return WriteResult(vpath, error=errors.is_directory(vpath, "write_file"))
            if "File exists" in result.error or "Not a directory" in result.error:
                return WriteResult(vpath, error=errors.below_a_file(vpath, "write"))
            return WriteResult(vpath, error=self._said(result.error, key, vpath))
        return WriteResult(vpath)

    def _op_edit(
        self, file_path: str, old_string: str, new_string: str, replace_all: bool
    ) -> Op[EditResult]:
        vpath, problem = edit_args(file_path, old_string, new_string)
        if problem:
            return EditResult(vpath, error=problem)
        key = self._key(vpath)
        result = yield Call("edit", (key, old_string, new_string, bool(replace_all)))
        if result.error:
            if "String not found in file" in result.error:
                return EditResult(vpath, error=errors.string_not_found(vpath, old_string))
            several = _NOT_UNIQUE.search(result.error)
            if several:
                return EditResult(vpath, error=errors.string_not_unique(vpath, int(several[1])))
            message = yield from self._explained(result.error, key, vpath, "edit_file")
            return EditResult(vpath, error=message)
        return EditResult(vpath, int(result.occurrences or 0))

    def _op_delete(self, path: str) -> Op[DeleteResult]:
        try:
            vpath = paths.validate(path)
        except errors.InvalidPathError as exc:
            return DeleteResult(str(path), error=str(exc))
        if vpath == self.mount:
            return DeleteResult(vpath, error=errors.delete_top(vpath))
        key = self._key(vpath)
        below = yield from self._every_file(key)
        result = yield Call("delete", (key,))
        if result.error:
            if self._missing(result.error, key):
                return DeleteResult(vpath, error=errors.not_found(vpath))
            return DeleteResult(vpath, error=self._said(result.error, key, vpath))
        deleted = sorted(self._vpath_of(f["path"]) for f in below) or [vpath]
        return DeleteResult(vpath, deleted)

    def _op_move(self, old_path: str, new_path: str) -> Op[MoveResult]:
        """Download, upload at the new paths, then delete: deepagents has no move.

        Not atomic: a failure half-way leaves both copies, never neither.
        """
        old, new, problem = move_args(self.mount, old_path, new_path)
        if problem:
            return MoveResult(old, new, error=problem)
        key, new_key = self._key(old), self._key(new)
        sources = sorted(f["path"] for f in (yield from self._every_file(key))) or [key]
        got = yield Call("download_files", (sources,))
        if any(d.content is None for d in got):
            if sources == [key]:
                return MoveResult(old, new, error=errors.not_found(old))
            return MoveResult(old, new, error=errors.tool_failed("move", RuntimeError()))
        (there,) = yield Call("download_files", ([new_key],))
        if there.content is not None or (yield from self._is_dir(new_key)):
            return MoveResult(old, new, error=errors.already_exists(new))
        targets = [new_key + source[len(key) :] for source in sources]
        sent = yield Call(
            "upload_files", (list(zip(targets, [d.content for d in got], strict=True)),)
        )
        for target, answer in zip(targets, sent, strict=True):
            if answer.error:
                vpath = self._vpath(target)
                return MoveResult(
                    old, new, error=_code_message(answer.error, target, vpath, "move", self)
                )
        result = yield Call("delete", (key,))
        if result.error:
            return MoveResult(old, new, error=self._said(result.error, key, old))
        moved = [(self._vpath(s), self._vpath(t)) for s, t in zip(sources, targets, strict=True)]
        return MoveResult(old, new, moved)

    def _op_glob(self, pattern: str, path: str | None) -> Op[GlobResult]:
        try:
            base = paths.validate_dir(path)
            query = compile_glob(pattern, base)
        except (errors.InvalidPathError, PatternError) as exc:
            return GlobResult(str(pattern), error=str(exc))
        root = self._root(base)
        if root is None:
            return GlobResult(pattern)
        files = []
        for info in (yield from self._every_file(root[0])):
            vpath = self._vpath_of(info["path"])
            if query.matches(vpath):
                files.append(FileInfo(vpath, False, info.get("size"), info.get("modified_at")))
        return GlobResult(pattern, sorted(files, key=lambda f: f.path))

    def _op_grep(self, pattern: str, path: str | None, glob: str | None) -> Op[GrepResult]:
        problem = check_grep_pattern(pattern)
        if problem:
            return GrepResult(str(pattern), error=problem)
        try:
            base = paths.validate_dir(path)
            query = compile_glob(glob, base) if glob else None
        except (errors.InvalidPathError, PatternError) as exc:
            return GrepResult(pattern, error=str(exc))
        root = self._root(base)
        if root is None:
            return GrepResult(pattern)
        result = yield Call("grep", (pattern, root[0]))
        if result.error and not result.matches:
            return GrepResult(pattern, error=self._said(result.error, root[0], root[1]))
        matches = []
        for m in result.matches or []:
            vpath = self._vpath_of(m["path"])
            if vpath != base and not paths.is_within(vpath, base):
                continue  # the wrapped backend looked wider than asked
            if query is not None and not query.matches(vpath):
                continue
            text = str(m["text"])
            matches.append(GrepMatch(vpath, int(m["line"]), text.removesuffix("\r")))
        matches.sort(key=lambda m: (m.path, m.line))
        return GrepResult(pattern, matches)

    def _op_recent(self, path: str, limit: int) -> Op[RecentResult]:
        try:
            vpath = paths.validate_dir(path)
        except errors.InvalidPathError as exc:
            return RecentResult(str(path), error=str(exc))
        every = yield from self._every_file(self._key(vpath))
        newest = sorted(every, key=lambda f: f.get("modified_at") or "", reverse=True)[:limit]
        files = []
        for info in newest:
            first: str | None = None
            read = yield Call("read", (info["path"], 0, 1))
            data = read.file_data
            if read.error or data is None or data.get("encoding") == "base64":
                first = None
            elif read.start_line is None and data.get("content") == EMPTY_CONTENT_WARNING:
                first = ""
            else:
                first = (split_lines(data.get("content", "")) or [""])[0][:500]
            files.append(
                RecentFile(
                    self._vpath_of(info["path"]),
                    int(info.get("size") or 0),
                    info.get("modified_at") or None,
                    first,
                )
            )
        return RecentResult(vpath, files, len(every))

    def _op_upload(self, files: Sequence[tuple[str, bytes]]) -> Op[list[UploadResult]]:
        results: list[UploadResult | None] = []
        sent: list[tuple[str, bytes]] = []
        where: list[tuple[int, str, str]] = []
        for file_path, content in files:
            try:
                vpath = paths.validate_file(file_path)
            except errors.InvalidPathError as exc:
                results.append(UploadResult(str(file_path), error=str(exc)))
                continue
            if not isinstance(content, bytes | bytearray):
                results.append(UploadResult(vpath, error="Error: upload content must be bytes."))
                continue
            key = self._key(vpath)
            where.append((len(results), key, vpath))
            results.append(None)
            sent.append((key, bytes(content)))
        if sent:
            answers = yield Call("upload_files", (sent,))
            for (i, key, vpath), answer in zip(where, answers, strict=True):
                error = _code_message(answer.error, key, vpath, "write", self)
                results[i] = UploadResult(vpath, error=error)
        return [r for r in results if r is not None]

    def _op_download(self, paths_: Sequence[str]) -> Op[list[DownloadResult]]:
        results: list[DownloadResult | None] = []
        asked: list[str] = []
        where: list[tuple[int, str, str]] = []
        for file_path in paths_:
            try:
                vpath = paths.validate_file(file_path)
            except errors.InvalidPathError as exc:
                results.append(DownloadResult(str(file_path), error=str(exc)))
                continue
            key = self._key(vpath)
            where.append((len(results), key, vpath))
            results.append(None)
            asked.append(key)
        if asked:
            answers = yield Call("download_files", (asked,))
            for (i, key, vpath), answer in zip(where, answers, strict=True):
                error = _code_message(answer.error, key, vpath, "read", self)
                content = None if error else answer.content
                results[i] = DownloadResult(vpath, content, error)
        return [r for r in results if r is not None]

    # -- the backend interface --------------------------------------------------------------

    def ls(self, path: str = "/") -> LsResult:
        """List a directory of the wrapped backend."""
        return self._sync(self._op_ls, "ls", path)  # type: ignore[no-any-return]

    async def als(self, path: str = "/") -> LsResult:
        """Async ``ls``."""
        return await self._async(self._op_ls, "ls", path)  # type: ignore[no-any-return]

    def read(self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT) -> ReadResult:
        """A window of a text file's lines."""
        return self._sync(self._op_read, "read_file", file_path, offset, limit)  # type: ignore[no-any-return]

    async def aread(
        self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> ReadResult:
        """Async ``read``."""
        return await self._async(self._op_read, "read_file", file_path, offset, limit)  # type: ignore[no-any-return]

    def write(self, file_path: str, content: str) -> WriteResult:
        """Create or replace a text file."""
        return self._sync(self._op_write, "write_file", file_path, content)  # type: ignore[no-any-return]

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        """Async ``write``."""
        return await self._async(self._op_write, "write_file", file_path, content)  # type: ignore[no-any-return]

    def edit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Replace an exact string, as the wrapped backend edits."""
        return self._sync(  # type: ignore[no-any-return]
            self._op_edit, "edit_file", file_path, old_string, new_string, replace_all
        )

    async def aedit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Async ``edit``."""
        return await self._async(  # type: ignore[no-any-return]
            self._op_edit, "edit_file", file_path, old_string, new_string, replace_all
        )

    def delete(self, path: str) -> DeleteResult:
        """Delete a file, or a directory with everything below it."""
        return self._sync(self._op_delete, "delete", path)  # type: ignore[no-any-return]

    async def adelete(self, path: str) -> DeleteResult:
        """Async ``delete``."""
        return await self._async(self._op_delete, "delete", path)  # type: ignore[no-any-return]

    def move(self, old_path: str, new_path: str) -> MoveResult:
        """Move a file or a directory (copied, then deleted: see ``_op_move``)."""
        return self._sync(self._op_move, "move", old_path, new_path)  # type: ignore[no-any-return]

    async def amove(self, old_path: str, new_path: str) -> MoveResult:
        """Async ``move``."""
        return await self._async(self._op_move, "move", old_path, new_path)  # type: ignore[no-any-return]

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Files under ``path`` matching a glob pattern (deepmemory's glob language)."""
        return self._sync(self._op_glob, "glob", pattern, path)  # type: ignore[no-any-return]

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Async ``glob``."""
        return await self._async(self._op_glob, "glob", pattern, path)  # type: ignore[no-any-return]

    def grep(self, pattern: str, path: str | None = None, glob: str | None = None) -> GrepResult:
        """Lines containing the literal ``pattern`` under ``path``."""
        return self._sync(self._op_grep, "grep", pattern, path, glob)  # type: ignore[no-any-return]

    async def agrep(
        self, pattern: str, path: str | None = None, glob: str | None = None
    ) -> GrepResult:
        """Async ``grep``."""
        return await self._async(self._op_grep, "grep", pattern, path, glob)  # type: ignore[no-any-return]

    def recent(self, path: str, limit: int) -> RecentResult:
        """The ``limit`` files below ``path`` changed last, newest first (for the memory map)."""
        return self._sync(self._op_recent, "recent", path, limit)  # type: ignore[no-any-return]

    async def arecent(self, path: str, limit: int) -> RecentResult:
        """Async ``recent``."""
        return await self._async(self._op_recent, "recent", path, limit)  # type: ignore[no-any-return]

    def changes(self, path: str = "/") -> Any:
        """Unknown (``None``): a deepagents backend cannot say cheaply what changed."""
        return None

    async def achanges(self, path: str = "/") -> Any:
        """Async ``changes``."""
        return None

    def upload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Store files byte-exact through the wrapped backend."""
        return self._sync(self._op_upload, "upload_files", files)  # type: ignore[no-any-return]

    async def aupload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Async ``upload_files``."""
        return await self._async(self._op_upload, "upload_files", files)  # type: ignore[no-any-return]

    def download_files(self, paths: Sequence[str]) -> list[DownloadResult]:
        """The exact bytes of each file."""
        return self._sync(self._op_download, "download_files", paths)  # type: ignore[no-any-return]

    async def adownload_files(self, paths: Sequence[str]) -> list[DownloadResult]:
        """Async ``download_files``."""
        return await self._async(self._op_download, "download_files", paths)  # type: ignore[no-any-return]


class _Refused(Exception):
    """The wrapped backend refused a listing an operation needed; its message."""


_RESULTS: dict[str, Any] = {
    "ls": LsResult,
    "read_file": ReadResult,
    "write_file": WriteResult,
    "edit_file": EditResult,
    "delete": DeleteResult,
    "move": MoveResult,
    "glob": GlobResult,
    "grep": GrepResult,
    "recent": RecentResult,
}


def _code_message(
    code: str | None, key: str, vpath: str, verb: str, backend: DeepAgentsBackend
) -> str | None:
    """Our message for a deepagents upload/download error code (or its own text)."""
    if code is None:
        return None
    known = {
        "file_not_found": errors.not_found(vpath),
        "is_directory": errors.is_directory(vpath),
        "permission_denied": f"Error: permission to {verb} {vpath!r} was denied.",
        "invalid_path": f"Error: {vpath!r} is not a path the storage behind it accepts.",
    }
    return known.get(code) or backend._said(code, key, vpath)
