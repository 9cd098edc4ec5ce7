"""Policy wrappers: read-only areas and size limits around any backend.

Cross-cutting rules wrap a backend instead of editing every backend:

* ``ReadOnlyBackend(inner, prefixes=...)``: reads pass through; writes, edits,
  deletes and uploads under the prefixes (or everywhere) are refused with a message
  the model can act on. For operator-managed memory such as ``/memories/policies/``.
* ``LimitsBackend(inner, max_file_bytes=..., max_total_bytes=...)``: a write or edit
  that would make a file, or the files below the backend's mount, larger than
  allowed is refused before anything is stored.

Wrappers mount and bind like the backend they wrap, so they can be routes of a
``CompositeBackend``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Self

from deepmemory import errors, paths
from deepmemory.backends._text import count_and_replace, text_size
from deepmemory.backends.protocol import (
    DeleteResult,
    EditResult,
    MoveResult,
    UploadResult,
    WriteResult,
)

DEFAULT_MAX_FILE_BYTES = 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 100 * 1024 * 1024


class _Wrapper:
    """Delegates everything to ``inner``; subclasses override what they police."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def mount(self) -> str:
        """The wrapped backend's mount point."""
        return str(self.inner.mount)

    def mounted(self, prefix: str) -> Self:
        """This policy around the inner backend mounted at ``prefix``."""
        clone = copy.copy(self)
        clone.inner = self.inner.mounted(prefix)
        return clone

    def bind(self, runtime: Any) -> Self:
        """This policy around the inner backend bound to ``runtime``."""
        clone = copy.copy(self)
        clone.inner = self.inner.bind(runtime)
        return clone

    def __getattr__(self, name: str) -> Any:
        # Everything not policed (ls, read, glob, grep, download_files...) passes through.
        if name == "inner" or name.startswith("__"):
            raise AttributeError(name)  # no delegation while copy() rebuilds the object
        return getattr(self.inner, name)

    @staticmethod
    def _screen(
        files: Sequence[tuple[str, bytes]], refuse: Callable[[str, bytes], str | None]
    ) -> tuple[list[UploadResult | None], list[int]]:
        """Refusals in place, and the indices of the files to pass on."""
        out: list[UploadResult | None] = []
        allowed = []
        for i, (file_path, data) in enumerate(files):
            problem = refuse(file_path, data)
            out.append(UploadResult(file_path, problem) if problem else None)
            if not problem:
                allowed.append(i)
        return out, allowed

    @staticmethod
    def _merge(
        out: list[UploadResult | None], allowed: list[int], done: Sequence[UploadResult]
    ) -> list[UploadResult]:
        for i, res in zip(allowed, done, strict=True):
            out[i] = res
        return [r for r in out if r is not None]

    def _upload(
        self, files: Sequence[tuple[str, bytes]], refuse: Callable[[str, bytes], str | None]
    ) -> list[UploadResult]:
        out, allowed = self._screen(files, refuse)
        return self._merge(out, allowed, self.inner.upload_files([files[i] for i in allowed]))

    async def _aupload(
        self, files: Sequence[tuple[str, bytes]], refuse: Callable[[str, bytes], str | None]
    ) -> list[UploadResult]:
        out, allowed = self._screen(files, refuse)
        done = await self.inner.aupload_files([files[i] for i in allowed])
        return self._merge(out, allowed, done)


class ReadOnlyBackend(_Wrapper):
    """Refuse every change under ``prefixes`` (default: everywhere).

    Example:
        >>> from deepmemory.backends import StoreBackend
        >>> policies = ReadOnlyBackend(StoreBackend(namespace=("policies",)))
    """

    def __init__(self, inner: Any, *, prefixes: Sequence[str] | None = None) -> None:
        super().__init__(inner)
        self.prefixes = None if prefixes is None else [paths.validate(p) for p in prefixes]

    def _locked(self, path: object) -> str | None:
        try:
            vpath = paths.validate(path)
        except errors.InvalidPathError:
            return None  # the inner backend refuses it with the path message
        if self.prefixes is None or any(paths.is_within(vpath, p) for p in self.prefixes):
            return errors.read_only(vpath)
        return None

    def write(self, file_path: str, content: str) -> WriteResult:
        """Refused when read-only, else passed on."""
        locked = self._locked(file_path)
        return WriteResult(file_path, locked) if locked else self.inner.write(file_path, content)

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        """Async ``write``."""
        locked = self._locked(file_path)
        if locked:
            return WriteResult(file_path, locked)
        return await self.inner.awrite(file_path, content)  # type: ignore[no-any-return]

    def edit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Refused when read-only, else passed on."""
        locked = self._locked(file_path)
        if locked:
            return EditResult(file_path, error=locked)
        return self.inner.edit(file_path, old_string, new_string, replace_all=replace_all)  # type: ignore[no-any-return]

    async def aedit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Async ``edit``."""
        locked = self._locked(file_path)
        if locked:
            return EditResult(file_path, error=locked)
        return await self.inner.aedit(file_path, old_string, new_string, replace_all=replace_all)  # type: ignore[no-any-return]

    def delete(self, path: str) -> DeleteResult:
        """Refused when read-only, else passed on."""
        locked = self._locked(path)
        return DeleteResult(path, error=locked) if locked else self.inner.delete(path)

    async def adelete(self, path: str) -> DeleteResult:
        """Async ``delete``."""
        locked = self._locked(path)
        if locked:
            return DeleteResult(path, error=locked)
        return await self.inner.adelete(path)  # type: ignore[no-any-return]

    def move(self, old_path: str, new_path: str) -> MoveResult:
        """Refused when either end is read-only, else passed on."""
        locked = self._locked(old_path) or self._locked(new_path)
        if locked:
            return MoveResult(str(old_path), str(new_path), error=locked)
        return self.inner.move(old_path, new_path)  # type: ignore[no-any-return]

    async def amove(self, old_path: str, new_path: str) -> MoveResult:
        """Async ``move``."""
        locked = self._locked(old_path) or self._locked(new_path)
        if locked:
            return MoveResult(str(old_path), str(new_path), error=locked)
        return await self.inner.amove(old_path, new_path)  # type: ignore[no-any-return]

    def upload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Uploads under read-only prefixes are refused, the others passed on."""
        return self._upload(files, lambda path, _: self._locked(path))

    async def aupload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Async ``upload_files``."""
        return await self._aupload(files, lambda path, _: self._locked(path))


def _too_big(path: str, size: int, limit: int) -> str:
    return (
        f"Error: {path!r} would be {size:,} bytes, over the {limit:,}-byte limit for one "
        "file. Nothing was written. Keep memory files short: summarise, or split the "
        "content into several files."
    )


def _over_quota(path: str, total: int, limit: int) -> str:
    return (
        f"Error: writing {path!r} would bring this memory to {total:,} bytes, over its "
        f"{limit:,}-byte limit. Nothing was written. Delete or shorten files you no longer "
        "need (ls and read_file show what is there), then try again."
    )


class _Usage:
    """Bytes stored under the mount, and the sizes of the files a call may replace."""

    def __init__(self, total: int, sizes: dict[str, int]) -> None:
        self.total, self.sizes = total, sizes

    @classmethod
    def of(cls, space: tuple[int, dict[str, int]] | None, listing: Any = None) -> _Usage:
        """From the backend's ``space_used`` answer, else from a listing of every file."""
        if space is not None:
            return cls(*space)
        sizes = {info.path: info.size or 0 for info in (listing.files if listing else [])}
        return cls(sum(sizes.values()), sizes)

    def after(self, vpath: str, size: int) -> int:
        return self.total - self.sizes.get(vpath, 0) + size

    def record(self, vpath: str, size: int) -> None:
        self.total = self.after(vpath, size)
        self.sizes[vpath] = size


def _byte_size(data: object) -> int:
    return memoryview(data).nbytes if isinstance(data, bytes | bytearray | memoryview) else 0


def _utf8_size(text: object) -> int:
    return text_size(text) if isinstance(text, str) else 0


def _edited_size(download: Any, old: object, new: object, replace_all: bool) -> int:
    """Exact size of the file after the edit (0 when the edit will fail anyway)."""
    if download.content is None or not isinstance(old, str) or not isinstance(new, str):
        return 0
    try:
        text = download.content.decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return text_size(count_and_replace(text, old, new, replace_all)[1]) if old else 0


class LimitsBackend(_Wrapper):
    """Refuse writes that make a file, or everything under the mount, too large.

    Example:
        >>> from deepmemory.backends import StoreBackend
        >>> memories = LimitsBackend(StoreBackend(), max_file_bytes=64_000)
    """

    def __init__(
        self,
        inner: Any,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_total_bytes: int | None = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        super().__init__(inner)
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes

    def _problem(self, file_path: str, size: int, usage: _Usage | None) -> str | None:
        try:
            vpath = paths.validate(file_path)
        except errors.InvalidPathError:
            return None  # the inner backend refuses the path itself
        if size > self.max_file_bytes:
            return _too_big(vpath, size, self.max_file_bytes)
        if usage is not None and self.max_total_bytes is not None:
            if usage.after(vpath, size) > self.max_total_bytes:
                return _over_quota(vpath, usage.after(vpath, size), self.max_total_bytes)
            usage.record(vpath, size)
        return None

    def _usage(self, file_paths: Sequence[str], adding: int) -> _Usage | None:
        if self.max_total_bytes is None:
            return None
        # Our stores keep the total in the database; other backends list every file.
        # Below ``bound`` an upper bound of the total (expired files included) will do.
        bound = self.max_total_bytes - adding
        space_used = getattr(self.inner, "space_used", None)
        space = space_used(file_paths, bound=bound) if space_used is not None else None
        return _Usage.of(space, None if space else self.inner.glob("**", self.mount))

    async def _ausage(self, file_paths: Sequence[str], adding: int) -> _Usage | None:
        if self.max_total_bytes is None:
            return None
        bound = self.max_total_bytes - adding
        space_used = getattr(self.inner, "aspace_used", None)
        space = await space_used(file_paths, bound=bound) if space_used is not None else None
        return _Usage.of(space, None if space else await self.inner.aglob("**", self.mount))

    def write(self, file_path: str, content: str) -> WriteResult:
        """Write unless a limit would be exceeded."""
        size = _utf8_size(content)
        problem = self._problem(file_path, size, self._usage([file_path], size))
        return WriteResult(file_path, problem) if problem else self.inner.write(file_path, content)

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        """Async ``write``."""
        size = _utf8_size(content)
        problem = self._problem(file_path, size, await self._ausage([file_path], size))
        if problem:
            return WriteResult(file_path, problem)
        return await self.inner.awrite(file_path, content)  # type: ignore[no-any-return]

    def edit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Edit unless the result would exceed a limit."""
        (current,) = self.inner.download_files([file_path])
        size = _edited_size(current, old_string, new_string, replace_all)
        problem = self._problem(file_path, size, self._usage([file_path], size))
        if problem:
            return EditResult(file_path, error=problem)
        return self.inner.edit(file_path, old_string, new_string, replace_all=replace_all)  # type: ignore[no-any-return]

    async def aedit(
        self, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> EditResult:
        """Async ``edit``."""
        (current,) = await self.inner.adownload_files([file_path])
        size = _edited_size(current, old_string, new_string, replace_all)
        problem = self._problem(file_path, size, await self._ausage([file_path], size))
        if problem:
            return EditResult(file_path, error=problem)
        return await self.inner.aedit(file_path, old_string, new_string, replace_all=replace_all)  # type: ignore[no-any-return]

    def _refuse_upload(self, usage: _Usage | None) -> Callable[[str, bytes], str | None]:
        def refuse(file_path: str, data: bytes) -> str | None:
            return self._problem(file_path, _byte_size(data), usage)

        return refuse

    def upload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Upload the files that fit the limits; report the others."""
        adding = sum(_byte_size(data) for _, data in files)
        usage = self._usage([path for path, _ in files], adding)
        return self._upload(files, self._refuse_upload(usage))

    async def aupload_files(self, files: Sequence[tuple[str, bytes]]) -> list[UploadResult]:
        """Async ``upload_files``."""
        adding = sum(_byte_size(data) for _, data in files)
        usage = await self._ausage([path for path, _ in files], adding)
        return await self._aupload(files, self._refuse_upload(usage))


def _limited(backend: Any) -> bool:
    """Whether ``backend`` is, or wraps, a ``LimitsBackend``."""
    while backend is not None:
        if isinstance(backend, LimitsBackend):
            return True
        backend = backend.__dict__.get("inner")
    return False


def _persistent(backend: Any) -> bool:
    """Whether ``backend`` (under any policy wrappers) keeps files beyond the thread."""
    from deepmemory.backends.filesystem import FilesystemBackend
    from deepmemory.backends.store import StoreBackend

    while isinstance(backend, _Wrapper):
        backend = backend.inner
    return isinstance(backend, StoreBackend | FilesystemBackend)


def with_default_limits(backend: Any) -> Any:
    """``backend`` with ``LimitsBackend``'s defaults on its persistent storage.

    A store or filesystem backend, or such a route of a ``CompositeBackend``, that no
    ``LimitsBackend`` already bounds gets one (1 MiB a file, 100 MiB in all); thread
    state and storage the application bounded itself are left as they are.
    """
    from deepmemory.backends.composite import CompositeBackend

    if isinstance(backend, CompositeBackend):
        routes: dict[str, Any] = {
            mount: LimitsBackend(route) if _persistent(route) and not _limited(route) else route
            for mount, route in backend.routes.items()
        }
        if routes == backend.routes and not _persistent(backend.default):
            return backend
        clone = copy.copy(backend)
        clone.routes = routes
        clone.default = with_default_limits(backend.default)
        return clone
    if _persistent(backend) and not _limited(backend):
        return LimitsBackend(backend)
    return backend
