"""deepmemory inside ``deepagents``: our stores behind deepagents' own ``StoreBackend``.

``StoreBackend`` here is deepagents' ``StoreBackend`` (same constructor, methods,
result types and error texts; it subclasses it), with every call on one of our stores
(``SQLiteStore``, ``PostgresStore``) taking our fast paths:

* ``ls``, ``glob`` and ``grep`` run in the database (a directory's children, the names
  below a directory without their contents, the trigram index), instead of paging the
  whole namespace through ``search`` on every call;
* ``write`` is one statement, ``edit`` a compare-and-swap on the file's version (one
  statement when the old string occurs once): concurrent edits never lose one; a
  recursive ``delete`` is one batch of the keys the database lists;
* changes are recorded in the file's history, attributed to the run's thread (and
  ``user_id`` / ``assistant_id`` from its context), and the stores' limits apply.

Over any other ``BaseStore`` every call is deepagents' own. Items are deepagents' layout
(``{"content", "encoding", "created_at", "modified_at"}``, keyed by the file's path; the
older list-of-lines content reads back too), so data written by either side reads back
unchanged through the other.

Operations are written once as generators of store calls (``backends._base``), driven
by the sync or the async methods of the store.

Example:
    >>> from deepagents import create_deep_agent  # doctest: +SKIP
    >>> from deepagents.backends import CompositeBackend, StateBackend  # doctest: +SKIP
    >>> from deepmemory.integrations.deepagents import StoreBackend  # doctest: +SKIP
    >>> from deepmemory.stores import SQLiteStore  # doctest: +SKIP
    >>> memories = StoreBackend(store=SQLiteStore("memory.db"), namespace=lambda rt: ("mem",))
    >>> agent = create_deep_agent(  # doctest: +SKIP
    ...     backend=CompositeBackend(default=StateBackend(), routes={"/memories/": memories})
    ... )
"""

from __future__ import annotations

import base64
import random
from typing import Any

from deepagents.backends import utils as _da
from deepagents.backends.protocol import (
    DeleteResult,
    EditResult,
    FileData,
    FileDownloadResponse,
    FileInfo,
    FileUploadResponse,
    GlobResult,
    GrepResult,
    LsResult,
    ReadResult,
    WriteResult,
)
from deepagents.backends.store import StoreBackend as _DeepAgentsStoreBackend
from langgraph.config import get_config
from langgraph.runtime import get_runtime
from langgraph.store.base import PutOp

from deepmemory import paths
from deepmemory.backends._base import BACKOFF, Call, Op, run_async, run_sync
from deepmemory.backends.protocol import Author, Encoding, Namespace, StoredFile
from deepmemory.backends.protocol import FileInfo as OurFileInfo
from deepmemory.clock import now_iso
from deepmemory.stores._base import SQLStore, attributed_to

__all__ = ["StoreBackend"]

# Compare-and-swap attempts of one edit before it reports the file as busy; between
# attempts, a pause that doubles (random on each side, so contenders spread out).
MAX_EDIT_ATTEMPTS = 20


class StoreBackend(_DeepAgentsStoreBackend):
    """deepagents' ``StoreBackend``, answering through our stores' fast paths.

    Construct it exactly as deepagents' (``StoreBackend(namespace=lambda rt: (...),
    store=...)``; without ``store`` the graph's store is used). On a store that is not
    ours, each call is deepagents' own.
    """

    # -- dispatch -------------------------------------------------------------------------

    def _ours(self) -> tuple[SQLStore, Namespace] | None:
        store = self._get_store()
        if not isinstance(store, SQLStore):
            return None
        return store, self._get_namespace()

    def ls(self, path: str) -> LsResult:
        """List a directory's files and subdirectories (``/`` ends a directory's path)."""
        if (ours := self._ours()) is None or (key := _dir_key(path)) is None:
            return super().ls(path)
        return run_sync(_op_ls(ours[1], key), ours[0])

    async def als(self, path: str) -> LsResult:
        """Async ``ls``."""
        if (ours := self._ours()) is None or (key := _dir_key(path)) is None:
            return await super().als(path)
        return await run_async(_op_ls(ours[1], key), ours[0])

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        """Lines ``offset .. offset + limit`` of a file, as deepagents' ``read``."""
        if (ours := self._ours()) is None:
            return super().read(file_path, offset, limit)
        return run_sync(_op_read(self, ours[1], file_path, offset, limit), ours[0])

    async def aread(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        """Async ``read``."""
        if (ours := self._ours()) is None:
            return await super().aread(file_path, offset, limit)
        return await run_async(_op_read(self, ours[1], file_path, offset, limit), ours[0])

    def write(self, file_path: str, content: str) -> WriteResult:
        """Create or replace a text file (its creation time is kept)."""
        if (ours := self._ours()) is None:
            return super().write(file_path, content)
        return run_sync(_op_write(ours[1], file_path, content, _author()), ours[0])

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        """Async ``write``."""
        if (ours := self._ours()) is None:
            return await super().awrite(file_path, content)
        return await run_async(_op_write(ours[1], file_path, content, _author()), ours[0])

    def edit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        """Replace ``old_string``; never loses a concurrent edit (compare-and-swap)."""
        if (ours := self._ours()) is None:
            return super().edit(file_path, old_string, new_string, replace_all)
        op = _op_edit(ours[1], file_path, old_string, new_string, replace_all, _author())
        return run_sync(op, ours[0])

    async def aedit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        """Async ``edit``."""
        if (ours := self._ours()) is None:
            return await super().aedit(file_path, old_string, new_string, replace_all)
        op = _op_edit(ours[1], file_path, old_string, new_string, replace_all, _author())
        return await run_async(op, ours[0])

    def delete(self, file_path: str) -> DeleteResult:
        """Delete a file, or a directory with everything below it, in one statement."""
        if (ours := self._ours()) is None:
            return super().delete(file_path)
        with attributed_to(_author()):
            return run_sync(_op_delete(ours[1], file_path), ours[0])

    async def adelete(self, file_path: str) -> DeleteResult:
        """Async ``delete``."""
        if (ours := self._ours()) is None:
            return await super().adelete(file_path)
        with attributed_to(_author()):
            return await run_async(_op_delete(ours[1], file_path), ours[0])

    def grep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        """Lines containing ``pattern`` (literal), found through the database's index."""
        if (ours := self._ours()) is None:
            return super().grep(pattern, path, glob, max_count=max_count)
        return run_sync(_op_grep(ours[1], pattern, path, glob, max_count), ours[0])

    async def agrep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        """Async ``grep``."""
        if (ours := self._ours()) is None:
            return await super().agrep(pattern, path, glob, max_count=max_count)
        return await run_async(_op_grep(ours[1], pattern, path, glob, max_count), ours[0])

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Files matching ``pattern`` (deepagents' glob rules), newest first."""
        if (ours := self._ours()) is None:
            return super().glob(pattern, path)
        return run_sync(_op_glob(ours[1], pattern, path), ours[0])

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Async ``glob``."""
        if (ours := self._ours()) is None:
            return await super().aglob(pattern, path)
        return await run_async(_op_glob(ours[1], pattern, path), ours[0])

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        """Store files given as bytes (text as UTF-8, anything else as base64)."""
        if (ours := self._ours()) is None:
            return super().upload_files(files)
        return run_sync(_op_upload(ours[1], files, _author()), ours[0])

    async def aupload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        """Async ``upload_files``."""
        if (ours := self._ours()) is None:
            return await super().aupload_files(files)
        return await run_async(_op_upload(ours[1], files, _author()), ours[0])

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        """Files as bytes, in the order asked; a missing one is ``file_not_found``."""
        if (ours := self._ours()) is None:
            return super().download_files(paths)
        return run_sync(_op_download(ours[1], paths), ours[0])

    async def adownload_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        """Async ``download_files``."""
        if (ours := self._ours()) is None:
            return await super().adownload_files(paths)
        return await run_async(_op_download(ours[1], paths), ours[0])


# -- the run, and conversions --------------------------------------------------------------


def _author() -> Author | None:
    """Who makes this call's changes: the run's thread, user and assistant, if in a run."""
    try:
        config = get_config()
    except RuntimeError:
        return None
    configurable = config.get("configurable") or {}
    try:
        context: Any = get_runtime().context
    except (RuntimeError, KeyError):
        context = None

    def lookup(key: str) -> str | None:
        value = context.get(key) if isinstance(context, dict) else getattr(context, key, None)
        value = configurable.get(key) if value is None else value
        return None if value is None else str(value)

    thread, user, assistant = lookup("thread_id"), lookup("user_id"), lookup("assistant_id")
    if thread is None and user is None and assistant is None:
        return None
    return Author(thread, user, assistant)


def _dir_key(path: str) -> str | None:
    """Our directory key for deepagents' ``ls`` path; ``None``: not one we can answer."""
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    try:
        return paths.validate_dir(path)
    except Exception:  # a path our rules refuse: deepagents' own answer, whatever it is
        return None


def _file_data(file: StoredFile) -> FileData:
    data = FileData(content=file.content, encoding=file.encoding)
    if file.created_at:
        data["created_at"] = file.created_at
    if file.modified_at:
        data["modified_at"] = file.modified_at
    return data


# -- operations, written once ----------------------------------------------------------------


def _op_ls(ns: Namespace, key: str) -> Op[LsResult]:
    entries = yield Call("file_list_dir", (ns, key))
    files: list[FileInfo] = []
    dirs: list[FileInfo] = []
    for entry in entries:
        if entry.is_dir:
            path = entry.path if entry.path.endswith("/") else entry.path + "/"
            dirs.append(FileInfo(path=path, is_dir=True, size=0, modified_at=""))
        else:
            files.append(
                FileInfo(
                    path=entry.path,
                    is_dir=False,
                    size=int(entry.size or 0),
                    modified_at=entry.modified_at or "",
                )
            )
    infos = files + dirs
    infos.sort(key=lambda info: info.get("path", ""))
    return LsResult(entries=infos)


def _op_read(
    backend: StoreBackend, ns: Namespace, file_path: str, offset: int, limit: int
) -> Op[ReadResult]:
    # One indexed row, converted by deepagents' own rules (its legacy layouts included).
    item = yield Call("get", (ns, file_path))
    if item is None:
        return ReadResult(error=f"File '{file_path}' not found")
    try:
        data = backend._convert_store_item_to_file_data(item)
    except ValueError as exc:
        return ReadResult(error=str(exc))
    if _da._get_backend_read_file_type(file_path) != "text":
        return ReadResult(file_data=data)
    return _da.slice_read_response(data, offset, limit)


def _op_write(
    ns: Namespace, file_path: str, content: str, author: Author | None
) -> Op[WriteResult]:
    now = now_iso()
    file = StoredFile(content, "utf-8", now, now)  # an existing file keeps its created_at
    kwargs = {"author": author, "op": "write"}
    if (yield Call("file_write", (ns, file_path, file), kwargs)) is None:
        # A directory's path: deepagents writes it anyway (the files below stay).
        yield Call("file_put", (ns, file_path, file), {"expected_version": None, **kwargs})
    return WriteResult(path=file_path)


def _op_edit(
    ns: Namespace,
    file_path: str,
    old_string: str,
    new_string: str,
    replace_all: bool,
    author: Author | None,
) -> Op[EditResult]:
    kwargs = {"author": author, "op": "edit"}
    if old_string and not replace_all and "\x00" not in old_string + new_string:
        # Found exactly once: the whole edit is one statement on the latest row.
        edit = (ns, file_path, old_string, new_string, now_iso())
        if (yield Call("file_edit", edit, kwargs)) is not None:
            return EditResult(path=file_path, occurrences=1)
    for attempt in range(MAX_EDIT_ATTEMPTS):
        if attempt:
            yield Call(BACKOFF, (random.uniform(0.001, 0.005) * (1 << min(attempt, 6)),))
        file: StoredFile | None = yield Call("file_get", (ns, file_path))
        if file is None:
            return EditResult(error=f"Error: File '{file_path}' not found")
        if file.encoding == "base64":
            return EditResult(error="Error: Cannot edit binary files with text replacements.")
        result = _da.perform_string_replacement(file.content, old_string, new_string, replace_all)
        if isinstance(result, str):
            return EditResult(error=result)
        content, occurrences = result
        new = StoredFile(content, "utf-8", file.created_at, now_iso())
        put = {"expected_version": file.version, **kwargs}
        if (yield Call("file_put", (ns, file_path, new), put)) is not None:
            return EditResult(path=file_path, occurrences=int(occurrences))
    return EditResult(
        error=(
            f"Error: '{file_path}' kept changing while it was being edited "
            f"({MAX_EDIT_ATTEMPTS} attempts). Read it again and retry the edit."
        )
    )


def _op_delete(ns: Namespace, file_path: str) -> Op[DeleteResult]:
    # The keys from the database's listing (no contents), then one batch: one
    # transaction, each delete recorded in history (``attributed_to``).
    base = file_path.rstrip("/")
    keys = []
    if base and (yield Call("get", (ns, base))) is not None:
        keys.append(base)
    if (root := _dir_key(base or "/")) is not None:
        infos = yield Call("file_glob", (ns, root, ".*"))
        keys += [info.path for info in infos if not info.is_dir and info.path != base]
    if not keys:
        return DeleteResult(error=f"Error: File '{file_path}' not found")
    yield Call("batch", ([PutOp(ns, key, None) for key in keys],))
    return DeleteResult(path=file_path)


def _search_root(path: str | None) -> str | None:
    """The normalised search root by deepagents' rules, or ``None`` if they refuse ``path``."""
    try:
        return _da._normalize_path(path)
    except ValueError:
        return None


def _op_glob(ns: Namespace, pattern: str, path: str | None) -> Op[GlobResult]:
    root = _search_root(path)
    if root is None:
        return GlobResult(matches=[])
    try:
        matcher = _da.compile_grep_include_glob(pattern)
    except _da.InvalidGlobPatternError as exc:
        return GlobResult(error=str(exc))
    infos = yield Call("file_glob", (ns, root, ".*"))
    by_path = {info.path: info for info in infos if not info.is_dir}
    if not by_path and root != "/":  # ``path`` may name a file
        file = yield Call("file_get", (ns, root))
        if file is not None:
            by_path = {root: _info_of(root, file)}
    matches = [
        (p, info.modified_at or "")
        for p, info in by_path.items()
        if matcher(_da._relative_to_root(p, root))
    ]
    matches.sort(key=lambda match: match[1], reverse=True)
    return GlobResult(
        matches=[
            FileInfo(
                path=p,
                is_dir=False,
                size=int(by_path[p].size or 0),
                modified_at=modified,
            )
            for p, modified in matches
        ]
    )


def _info_of(key: str, file: StoredFile) -> OurFileInfo:
    return OurFileInfo(key, False, len(file.content.encode("utf-8")), file.modified_at)


def _op_grep(
    ns: Namespace, pattern: str, path: str | None, glob: str | None, max_count: int | None
) -> Op[GrepResult]:
    root = _search_root(path)
    if root is None:
        return GrepResult(matches=[])
    matcher = None
    if glob:
        try:
            matcher = _da.compile_grep_include_glob(glob)
        except _da.InvalidGlobPatternError as exc:
            return GrepResult(error=str(exc))
    if pattern == "" or "\n" in pattern:
        # Every line (or none): deepagents' own scan over this root's files.
        files = yield from _op_contents(ns, root)
        return _da.grep_matches_from_files(files, pattern, path, glob, max_count=max_count)
    found = yield Call("file_grep", (ns, root, pattern, None))
    if not found and root != "/":  # ``path`` may name a file
        file = yield Call("file_get", (ns, root))
        if file is not None:
            return _da.grep_matches_from_files(
                {root: _file_data(file)}, pattern, path, glob, max_count=max_count
            )
    result: list[Any] = []
    for match in found:
        if matcher is not None and not matcher(_da._relative_to_root(match.path, root)):
            continue
        if max_count is not None and len(result) >= max_count:
            return GrepResult(matches=result, truncated=True)
        result.append({"path": match.path, "line": int(match.line), "text": match.text})
    return GrepResult(matches=result)


def _op_contents(ns: Namespace, root: str) -> Op[dict[str, FileData]]:
    infos = yield Call("file_glob", (ns, root, ".*"))
    keys = [info.path for info in infos if not info.is_dir] or [root]
    files: dict[str, FileData] = {}
    for key in keys:
        file = yield Call("file_get", (ns, key))
        if file is not None:
            files[key] = _file_data(file)
    return files


def _op_upload(
    ns: Namespace, files: list[tuple[str, bytes]], author: Author | None
) -> Op[list[FileUploadResponse]]:
    responses = []
    for path, content in files:
        encoding: Encoding = "utf-8"
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text, encoding = base64.standard_b64encode(content).decode("ascii"), "base64"
        now = now_iso()
        file = StoredFile(text, encoding, now, now)
        kwargs = {"expected_version": None, "author": author, "op": "write"}
        yield Call("file_put", (ns, path, file), kwargs)
        responses.append(FileUploadResponse(path=path, error=None))
    return responses


def _op_download(ns: Namespace, keys: list[str]) -> Op[list[FileDownloadResponse]]:
    responses = []
    for key in keys:
        file: StoredFile | None = yield Call("file_get", (ns, key))
        if file is None:
            responses.append(FileDownloadResponse(path=key, content=None, error="file_not_found"))
            continue
        if file.encoding == "base64":
            content = base64.standard_b64decode(file.content)
        else:
            content = file.content.encode("utf-8")
        responses.append(FileDownloadResponse(path=key, content=content, error=None))
    return responses
