"""CompositeBackend: route paths to backends by longest prefix.

``CompositeBackend(default=StateBackend(), routes={"/memories/": StoreBackend()})``
keeps ``/memories/*`` in the store and everything else in thread state. Routing is
decided on the normalised path (``paths.validate``), so ``/memories/../x`` never
reaches a route. Each routed backend is *mounted* at its prefix: it sees full virtual
paths, stores keys relative to the prefix, and reports errors with the path the model
wrote.

Listing a directory shows the routes below it as directories; glob and grep over a
directory search every backend that serves part of it (concurrently) and merge the
answers, each path as the agent sees it. The composite itself only routes: policies
such as read-only areas wrap the backends it routes to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from deepmemory import errors, paths
from deepmemory.backends._base import BaseBackend
from deepmemory.backends.protocol import (
    DEFAULT_READ_LIMIT,
    DeleteResult,
    DownloadResult,
    EditResult,
    FileInfo,
    GlobResult,
    GrepResult,
    LsResult,
    MoveResult,
    ReadResult,
    RecallResult,
    RecentResult,
    UploadResult,
    WriteResult,
)
from deepmemory.errors import ConfigError

R = TypeVar("R")


class CompositeBackend(BaseBackend):
    """Route each path to the backend of its longest matching prefix.

    Example:
        >>> from deepmemory.backends import StateBackend, StoreBackend
        >>> backend = CompositeBackend(
        ...     default=StateBackend(), routes={"/memories/": StoreBackend()}
        ... )
    """

    def __init__(self, default: BaseBackend, routes: Mapping[str, Any]) -> None:
        mounts: dict[str, BaseBackend] = {}
        for prefix, backend in routes.items():
            if not hasattr(backend, "mounted"):
                raise ConfigError(
                    f"The backend for route {prefix!r} must be a deepmemory backend "
                    f"(got {type(backend).__name__}). A deepagents backend serves a route "
                    "once wrapped: DeepAgentsBackend(backend), from "
                    "deepmemory.integrations.deepagents (pip install 'deepmemory[deepagents]')."
                )
            try:
                mount = paths.validate(prefix)
            except errors.InvalidPathError as exc:
                raise ConfigError(f"Route prefix {prefix!r} is not a valid path: {exc}") from None
            if mount == "/":
                raise ConfigError("A route cannot be '/': use default= for the root.")
            mounts[mount] = backend.mounted(mount)
        # Routes may be policy wrappers (ReadOnlyBackend, LimitsBackend): anything that
        # mounts and binds like a backend.
        self.default = default
        # Longest prefix first, so the first match is the most specific route.
        self.routes: dict[str, BaseBackend] = dict(
            sorted(mounts.items(), key=lambda kv: len(kv[0]), reverse=True)
        )

    def bind(self, runtime: Any) -> CompositeBackend:
        """Bind every routed backend to one tool call's runtime."""
        clone = CompositeBackend.__new__(CompositeBackend)
        clone.mount = self.mount
        clone.default = self.default.bind(runtime)
        clone.routes = {m: b.bind(runtime) for m, b in self.routes.items()}
        return clone

    def mounted(self, prefix: str) -> CompositeBackend:
        """Composites are not nested under routes."""
        raise ConfigError("A CompositeBackend cannot itself be mounted under a route.")

    # -- routing ------------------------------------------------------------------------

    def route(self, path: str) -> BaseBackend:
        """The backend that serves a normalised path."""
        for mount, backend in self.routes.items():
            if paths.is_within(path, mount):
                return backend
        return self.default

    def _searchers(self, base: str) -> list[BaseBackend]:
        """Every backend holding part of directory ``base``: its owner and routes below it."""
        found = [self.route(base)]
        found += [b for m, b in self.routes.items() if m != base and paths.is_within(m, base)]
        return found

    def _child_routes(self, directory: str) -> list[FileInfo]:
        """Directories leading to routes below ``directory`` (however deep the route)."""
        prefix = paths.as_dir_prefix(directory)
        children = {
            prefix + mount[len(prefix) :].split("/", 1)[0] + "/"
            for mount in self.routes
            if mount != directory and mount.startswith(prefix)
        }
        return [FileInfo(child, is_dir=True) for child in sorted(children)]

    # -- merging ------------------------------------------------------------------------

    def _merge_ls(self, vpath: str, result: LsResult) -> LsResult:
        extra = self._child_routes(vpath)
        if not extra:
            return result
        if result.error and not result.entries:
            if "is a file" in result.error:
                return result
            result = LsResult(vpath)
        names = {e.path.rstrip("/") for e in extra}
        kept = [e for e in result.entries if e.path.rstrip("/") not in names]
        return LsResult(vpath, sorted(kept + extra, key=lambda e: e.path))

    def _owned(self, path: str, backend: BaseBackend) -> bool:
        return self.route(path) is backend

    def _merge_glob(
        self, pattern: str, parts: Sequence[tuple[BaseBackend, GlobResult]]
    ) -> GlobResult:
        files: list[FileInfo] = []
        for backend, result in parts:
            if result.error:
                return GlobResult(pattern, error=result.error)
            files += [f for f in result.files if self._owned(f.path, backend)]
        return GlobResult(pattern, sorted(files, key=lambda f: f.path))

    def _merge_grep(
        self, pattern: str, parts: Sequence[tuple[BaseBackend, GrepResult]]
    ) -> GrepResult:
        matches = []
        for backend, result in parts:
            if result.error:
                return GrepResult(pattern, error=result.error)
            matches += [m for m in result.matches if self._owned(m.path, backend)]
        matches.sort(key=lambda m: (m.path, m.line))
        return GrepResult(pattern, matches)

    @staticmethod
    def _fan_out(
        backends: list[BaseBackend], call: Callable[[BaseBackend], R]
    ) -> list[tuple[BaseBackend, R]]:
        if len(backends) <= 1:  # no pool for none (nothing searches by meaning) or one
            return [(b, call(b)) for b in backends]
        with ThreadPoolExecutor(max_workers=min(8, len(backends))) as pool:
            return list(zip(backends, pool.map(call, backends), strict=True))

    @staticmethod
    async def _afan_out(
        backends: list[BaseBackend], call: Callable[[BaseBackend], Any]
    ) -> list[tuple[BaseBackend, Any]]:
        results = await asyncio.gather(*(call(b) for b in backends))
        return list(zip(backends, results, strict=True))

    def _refused_uploads(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult | None]:
        return [
            UploadResult(str(path), top) if (top := self._route_top(path)) else None
            for path, _ in files
        ]

    def _group(
        self, file_paths: Sequence[str], done: Sequence[object] = ()
    ) -> dict[int, tuple[BaseBackend, list[int]]]:
        """Indices of ``file_paths`` by backend, skipping those already answered in ``done``."""
        groups: dict[int, tuple[BaseBackend, list[int]]] = {}
        for i, file_path in enumerate(file_paths):
            if i < len(done) and done[i] is not None:
                continue
            try:
                backend = self.route(paths.validate(file_path))
            except errors.InvalidPathError:
                backend = self.default
            groups.setdefault(id(backend), (backend, []))[1].append(i)
        return groups

    # -- operations -----------------------------------------------------------------------

    def _for(self, path: object, *, directory: bool = False) -> BaseBackend:
        try:
            return self.route(paths.validate_dir(path) if directory else paths.validate(path))
        except errors.InvalidPathError:
            return self.default  # it will refuse the path with the same message

    def ls(self, path: str = "/") -> LsResult:
        """List a directory, routes below it included."""
        try:
            vpath = paths.validate_dir(path)
        except errors.InvalidPathError as exc:
            return LsResult(str(path), error=str(exc))
        return self._merge_ls(vpath, self.route(vpath).ls(vpath))  # type: ignore[attr-defined]

    async def als(self, path: str = "/") -> LsResult:
        """Async ``ls``."""
        try:
            vpath = paths.validate_dir(path)
        except errors.InvalidPathError as exc:
            return LsResult(str(path), error=str(exc))
        return self._merge_ls(vpath, await self.route(vpath).als(vpath))  # type: ignore[attr-defined]

    def read(self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT) -> ReadResult:
        """Read from the backend that owns ``file_path``."""
        return self._for(file_path).read(file_path, offset, limit)  # type: ignore[attr-defined, no-any-return]

    async def aread(
        self, file_path: str, offset: int = 0, limit: int = DEFAULT_READ_LIMIT
    ) -> ReadResult:
        """Async ``read``."""
        return await self._for(file_path).aread(file_path, offset, limit)  # type: ignore[attr-defined, no-any-return]

    def _route_top(self, file_path: object) -> str | None:
        """The message refusing a file at a route's own path (it is a directory)."""
        try:
            vpath = paths.validate(file_path)
        except errors.InvalidPathError:
            return None
        return errors.is_directory(vpath, "a write") if vpath in self.routes else None

    def write(self, file_path: str, content: str) -> WriteResult:
        """Write to the backend that owns ``file_path``."""
        top = self._route_top(file_path)
        if top:
            return WriteResult(str(file_path), top)
        return self._for(file_path).write(file_path, content)  # type: ignore[attr-defined, no-any-return]

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        """Async ``write``."""
        top = self._route_top(file_path)
        if top:
            return WriteResult(str(file_path), top)
        return await self._for(file_path).awrite(file_path, content)  # type: ignore[attr-defined, no-any-return]

    def edit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Edit in the backend that owns ``file_path``."""
        backend = self._for(file_path)
        return backend.edit(file_path, old_string, new_string, replace_all=replace_all)  # type: ignore[attr-defined, no-any-return]

    async def aedit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Async ``edit``."""
        backend = self._for(file_path)
        return await backend.aedit(file_path, old_string, new_string, replace_all=replace_all)  # type: ignore[attr-defined, no-any-return]

    def delete(self, path: str) -> DeleteResult:
        """Delete in the backend that owns ``path`` (a route's own top is refused by it)."""
        return self._for(path).delete(path)  # type: ignore[attr-defined, no-any-return]

    async def adelete(self, path: str) -> DeleteResult:
        """Async ``delete``."""
        return await self._for(path).adelete(path)  # type: ignore[attr-defined, no-any-return]

    def _mover(self, old_path: str, new_path: str) -> BaseBackend | str:
        """The backend that makes a move, or why none can."""
        try:
            old, new = paths.validate(old_path), paths.validate(new_path)
        except errors.InvalidPathError:
            return self.default  # it refuses the path with the path's message
        owner = self.route(old)
        for end in (old, new):
            if end in self.routes:
                return errors.bad_move(old, new, f"{end!r} is the top of a separate storage")
        if self.route(new) is not owner:
            return errors.bad_move(
                old,
                new,
                "they are in different storages; copy the file with read_file and "
                "write_file, then delete the old one",
            )
        for mount in self.routes:
            if mount != old and (paths.is_within(mount, old) or paths.is_within(mount, new)):
                return errors.bad_move(old, new, f"{mount!r} below it is a separate storage")
        return owner

    def move(self, old_path: str, new_path: str) -> MoveResult:
        """Move within the backend that owns both paths."""
        mover = self._mover(old_path, new_path)
        if isinstance(mover, str):
            return MoveResult(str(old_path), str(new_path), error=mover)
        return mover.move(old_path, new_path)  # type: ignore[attr-defined, no-any-return]

    async def amove(self, old_path: str, new_path: str) -> MoveResult:
        """Async ``move``."""
        mover = self._mover(old_path, new_path)
        if isinstance(mover, str):
            return MoveResult(str(old_path), str(new_path), error=mover)
        return await mover.amove(old_path, new_path)  # type: ignore[attr-defined, no-any-return]

    def recalls(self) -> bool:
        """Whether any backend here searches by meaning."""
        return any(_recalls(b) for b in [self.default, *self.routes.values()])

    def _recallers(self, path: str | None) -> list[BaseBackend]:
        return [b for b in self._searchers_for(path) if _recalls(b)]

    @staticmethod
    def _merge_recall(
        query: str, limit: int, parts: Sequence[tuple[BaseBackend, RecallResult]]
    ) -> RecallResult:
        passages, unindexed = [], []
        for _, result in parts:
            if result.error:
                return RecallResult(query, error=result.error)
            passages += result.passages
            unindexed += result.unindexed
        passages.sort(key=lambda p: (-p.score, p.path, p.start_line))
        return RecallResult(query, passages[:limit], sorted(unindexed))

    def recall(self, query: str, path: str | None = None, limit: int = 5) -> RecallResult:
        """Search by meaning in every backend that can, below ``path``."""
        parts = self._fan_out(self._recallers(path), lambda b: b.recall(query, path, limit))  # type: ignore[attr-defined]
        return self._merge_recall(query, limit, parts)

    async def arecall(self, query: str, path: str | None = None, limit: int = 5) -> RecallResult:
        """Async ``recall``."""
        parts = await self._afan_out(self._recallers(path), lambda b: b.arecall(query, path, limit))  # type: ignore[attr-defined]
        return self._merge_recall(query, limit, parts)

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Glob across every backend serving part of ``path``."""
        backends = self._searchers_for(path)
        return self._merge_glob(pattern, self._fan_out(backends, lambda b: b.glob(pattern, path)))  # type: ignore[attr-defined]

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        """Async ``glob``."""
        backends = self._searchers_for(path)
        parts = await self._afan_out(backends, lambda b: b.aglob(pattern, path))  # type: ignore[attr-defined]
        return self._merge_glob(pattern, parts)

    def grep(self, pattern: str, path: str | None = None, glob: str | None = None) -> GrepResult:
        """Grep across every backend serving part of ``path``."""
        backends = self._searchers_for(path)
        parts = self._fan_out(backends, lambda b: b.grep(pattern, path, glob))  # type: ignore[attr-defined]
        return self._merge_grep(pattern, parts)

    async def agrep(
        self, pattern: str, path: str | None = None, glob: str | None = None
    ) -> GrepResult:
        """Async ``grep``."""
        backends = self._searchers_for(path)
        parts = await self._afan_out(backends, lambda b: b.agrep(pattern, path, glob))  # type: ignore[attr-defined]
        return self._merge_grep(pattern, parts)

    def _merge_recent(
        self, vpath: str, limit: int, parts: Sequence[tuple[BaseBackend, RecentResult]]
    ) -> RecentResult:
        files = []
        total, capped = 0, False
        for backend, result in parts:
            if result.error:
                return RecentResult(vpath, error=result.error)
            files += [f for f in result.files if self._owned(f.path, backend)]
            total, capped = total + result.total, capped or result.total_capped
        files.sort(key=lambda f: f.modified_at or "", reverse=True)
        return RecentResult(vpath, files[:limit], total, capped)

    def _mapped(self, path: str) -> list[tuple[BaseBackend, str]]:
        """Each backend holding part of directory ``path``, with the directory to ask it for.

        The owner of ``path`` is asked for ``path``; a route below it for its own mount.
        """
        try:
            base = paths.validate_dir(path)
        except errors.InvalidPathError:
            return [(self.default, path)]
        found = [(self.route(base), base)]
        found += [(b, m) for m, b in self.routes.items() if m != base and paths.is_within(m, base)]
        return found

    def recent(self, path: str, limit: int) -> RecentResult:
        """The files changed last below ``path``, across every backend serving part of it."""
        where = dict(self._mapped(path))
        parts = self._fan_out(list(where), lambda b: b.recent(where[b], limit))  # type: ignore[attr-defined]
        return self._merge_recent(path, limit, parts)

    async def arecent(self, path: str, limit: int) -> RecentResult:
        """Async ``recent``."""
        where = dict(self._mapped(path))
        parts = await self._afan_out(list(where), lambda b: b.arecent(where[b], limit))  # type: ignore[attr-defined]
        return self._merge_recent(path, limit, parts)

    def changes(self, path: str) -> Any:
        """A token that differs after any change below ``path``; ``None`` if not known."""
        tokens = tuple(
            b.changes() if hasattr(b, "changes") else None for b in self._searchers_for(path)
        )
        return None if None in tokens else tokens

    async def achanges(self, path: str) -> Any:
        """Async ``changes``."""
        backends = self._searchers_for(path)
        tokens = tuple([await b.achanges() if hasattr(b, "achanges") else None for b in backends])
        return None if None in tokens else tokens

    def _searchers_for(self, path: str | None) -> list[BaseBackend]:
        try:
            return self._searchers(paths.validate_dir(path))
        except errors.InvalidPathError:
            return [self.default]

    def upload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Upload each file to the backend that owns its path."""
        out: list[UploadResult | None] = self._refused_uploads(files)
        for backend, idx in self._group([f[0] for f in files], out).values():
            for i, res in zip(idx, backend.upload_files([files[i] for i in idx]), strict=True):  # type: ignore[attr-defined]
                out[i] = res
        return [r for r in out if r is not None]

    async def aupload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Async ``upload_files``."""
        out: list[UploadResult | None] = self._refused_uploads(files)
        for backend, idx in self._group([f[0] for f in files], out).values():
            done = await backend.aupload_files([files[i] for i in idx])  # type: ignore[attr-defined]
            for i, res in zip(idx, done, strict=True):
                out[i] = res
        return [r for r in out if r is not None]

    def download_files(self, paths_: Sequence[str]) -> list[DownloadResult]:
        """Download each file from the backend that owns its path."""
        out: list[DownloadResult | None] = [None] * len(paths_)
        for backend, idx in self._group(paths_).values():
            for i, res in zip(idx, backend.download_files([paths_[i] for i in idx]), strict=True):  # type: ignore[attr-defined]
                out[i] = res
        return [r for r in out if r is not None]

    async def adownload_files(self, paths_: Sequence[str]) -> list[DownloadResult]:
        """Async ``download_files``."""
        out: list[DownloadResult | None] = [None] * len(paths_)
        for backend, idx in self._group(paths_).values():
            done = await backend.adownload_files([paths_[i] for i in idx])  # type: ignore[attr-defined]
            for i, res in zip(idx, done, strict=True):
                out[i] = res
        return [r for r in out if r is not None]


def _recalls(backend: Any) -> bool:
    """Whether ``backend`` searches by meaning (a backend that cannot say: no)."""
    try:
        return bool(backend.recalls())
    except Exception:
        return False
