"""FilesystemBackend: a real directory on disk, confined to its root.

The virtual path ``/notes/a.txt`` is the file ``<root_dir>/notes/a.txt``. Confinement
holds at two levels: ``paths.validate`` refuses ``..``, backslashes and control
characters before a path gets here, and every host path is resolved (following
symlinks) and must still lie inside the resolved root, so a symlink planted inside
the root cannot lead a read, write, listing, glob or grep outside it. Writes go to a
temporary file that is renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from deepmemory import errors
from deepmemory.backends import _scan
from deepmemory.backends._files import FileOpsBackend
from deepmemory.backends._text import file_from_bytes, file_to_bytes
from deepmemory.backends.protocol import FileInfo, GrepMatch, Namespace, StoredFile
from deepmemory.errors import KeyRefusedError


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _version(st: os.stat_result) -> int:
    """A file's version: every write replaces the file, so its inode changes each time."""
    return (hash((st.st_ino, st.st_mtime_ns, st.st_size)) & (2**62 - 1)) or 1


def _threaded(method: Callable[..., Any]) -> Callable[..., Any]:
    async def run(self: _DiskFiles, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(method, self, *args, **kwargs)

    return run


class _DiskFiles:
    """Repository over a directory; keys are virtual paths below the root."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._lock_path = os.path.join(self.root, ".deepmemory-lock")

    def _inside(self, host: str) -> bool:
        real = os.path.realpath(host)
        return real == self.root or real.startswith(self.root + os.sep)

    def _host(self, key: str) -> str:
        return os.path.join(self.root, *[p for p in key.split("/") if p])

    def _checked(self, key: str) -> str:
        host = self._host(key)
        if not self._inside(host):
            raise KeyRefusedError(key, lambda path: errors.leads_outside(path, "used"))
        return host

    def _key_of(self, host: str) -> str:
        rel = os.path.relpath(host, self.root)
        return "/" if rel == "." else "/" + rel.replace(os.sep, "/")

    def _walk(self, dir_key: str) -> Iterator[tuple[str, str]]:
        """(key, host path) of every regular file below ``dir_key`` that stays inside."""
        top = self._host(dir_key)
        if not os.path.isdir(top) or not self._inside(top):
            return
        for folder, dirs, names in os.walk(top, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(folder, d)))
            for name in sorted(names):
                if name.startswith(".deepmemory-"):
                    continue  # our lock and temporary files
                host = os.path.join(folder, name)
                if os.path.isfile(host) and self._inside(host):
                    yield self._key_of(host), host

    def _read(self, host: str) -> StoredFile:
        with open(host, "rb") as fh:
            data = fh.read()
            st = os.fstat(fh.fileno())
        file = file_from_bytes(data, created_at=_iso(st.st_ctime), modified_at=_iso(st.st_mtime))
        file.version = _version(st)
        return file

    def _files(self, dir_key: str) -> Iterator[tuple[str, StoredFile]]:
        for key, host in self._walk(dir_key):
            yield key, self._read(host)

    def file_get(self, namespace: Namespace, key: str) -> StoredFile | None:
        host = self._host(key)
        if not os.path.isfile(host) or not self._inside(host):
            return None
        return self._read(host)

    def file_put(
        self, namespace: Namespace, key: str, file: StoredFile, *, expected_version: int | None
    ) -> int | None:
        host = self._checked(key)
        folder = os.path.dirname(host)
        try:
            os.makedirs(folder, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise KeyRefusedError(key, lambda path: errors.below_a_file(path, "write")) from None
        self._checked(self._key_of(folder))
        if expected_version is None:
            return self._replace(folder, host, file)
        # Compare-and-swap: check the version and replace under one lock for the root.
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = os.stat(host) if os.path.isfile(host) else None
            except FileNotFoundError:
                current = None
            found = 0 if current is None else _version(current)
            if found != expected_version:
                return None
            return self._replace(folder, host, file)

    def _replace(self, folder: str, host: str, file: StoredFile) -> int:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".deepmemory-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(file_to_bytes(file))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, host)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return _version(os.stat(host))

    def file_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]:
        top = self._host(dir_key)
        if not os.path.isdir(top) or not self._inside(top):
            return []
        prefix = "/" if dir_key == "/" else dir_key + "/"
        entries = []
        with os.scandir(top) as it:
            for entry in it:
                if entry.name.startswith(".deepmemory-") or not self._inside(entry.path):
                    continue
                if entry.is_dir():
                    entries.append(FileInfo(prefix + entry.name + "/", True))
                elif entry.is_file():
                    st = entry.stat()
                    entries.append(
                        FileInfo(prefix + entry.name, False, st.st_size, _iso(st.st_mtime))
                    )
        return sorted(entries, key=lambda e: e.path)

    def file_is_dir(self, namespace: Namespace, dir_key: str) -> bool:
        host = self._host(dir_key)
        return os.path.isdir(host) and self._inside(host)

    def file_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]:
        found = _scan.glob(
            ((key, StoredFile("")) for key, _ in self._walk(dir_key)), dir_key, regex, rel_prefix
        )
        out = []
        for info in found:
            st = os.stat(self._host(info.path))
            out.append(FileInfo(info.path, False, st.st_size, _iso(st.st_mtime)))
        return out

    def file_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]:
        return _scan.grep(self._files(dir_key), dir_key, literal, glob_regex, rel_prefix)

    def file_delete_tree(self, namespace: Namespace, key: str) -> list[str]:
        host = self._host(key)
        # The directory holding the entry must be inside the root, even when the entry
        # itself is a symlink (removed as a link, never followed).
        if not self._inside(os.path.dirname(host)):
            raise KeyRefusedError(key, lambda path: errors.leads_outside(path, "deleted"))
        if not os.path.islink(host):
            host = self._checked(key)
        if os.path.islink(host) or os.path.isfile(host):
            os.unlink(host)
            return [key]
        if os.path.isdir(host):
            keys = [k for k, _ in self._walk(key)]
            shutil.rmtree(host)
            return keys or [key]
        return []

    def file_move(
        self, namespace: Namespace, key: str, new_key: str
    ) -> list[tuple[str, str]] | None:
        host, target = self._checked(key), self._checked(new_key)
        if os.path.isfile(host):
            keys = [key]
        elif os.path.isdir(host):
            keys = [k for k, _ in self._walk(key)]
        else:
            return []
        if not keys:
            return []
        folder = os.path.dirname(target)
        # One rename (a directory with everything in it), under the root's lock so
        # that a compare-and-swap write cannot land in between.
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.lexists(target):
                return None
            try:
                os.makedirs(folder, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise KeyRefusedError(
                    new_key, lambda path: errors.below_a_file(path, "move to")
                ) from None
            self._checked(self._key_of(folder))
            os.rename(host, target)
        return sorted((k, new_key + k[len(key) :]) for k in keys)

    afile_get = _threaded(file_get)
    afile_put = _threaded(file_put)
    afile_move = _threaded(file_move)
    afile_list_dir = _threaded(file_list_dir)
    afile_is_dir = _threaded(file_is_dir)
    afile_glob = _threaded(file_glob)
    afile_grep = _threaded(file_grep)
    afile_delete_tree = _threaded(file_delete_tree)


class FilesystemBackend(FileOpsBackend):
    """Files in a real directory; no path, ``..`` or symlink can leave ``root_dir``.

    Example:
        >>> import tempfile
        >>> backend = FilesystemBackend(root_dir=tempfile.mkdtemp())
        >>> backend.write("/notes.txt", "hi").error is None
        True
    """

    def __init__(self, root_dir: str | os.PathLike[str], *, virtual_mode: bool = True) -> None:
        # virtual_mode is accepted for compatibility with other harnesses: paths here
        # are always virtual paths below root_dir.
        root = os.fspath(root_dir)
        os.makedirs(root, exist_ok=True)
        self.root_dir = root
        self._files_repo = _DiskFiles(root)

    def _repo(self) -> tuple[_DiskFiles, Namespace]:
        return self._files_repo, ()
