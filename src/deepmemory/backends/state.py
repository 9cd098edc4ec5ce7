"""StateBackend: files in the agent's per-thread graph state.

Files live in the ``files`` channel of the graph state, keyed by their full virtual
path, with the same value layout as store items. The channel's reducer
(:func:`merge_files`) merges updates and treats ``None`` as a deletion, so deletions
made by a subagent or a parallel tool call propagate like writes do. Because the
channel is part of the state, files are checkpointed with the thread and invisible to
every other thread.

A backend bound to a tool call reads the state the tool node started from and records
its own changes, which the file tools return as a ``Command`` update.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deepmemory.backends import _scan
from deepmemory.backends._base import async_twin
from deepmemory.backends._files import FileOpsBackend
from deepmemory.backends._text import file_from_value
from deepmemory.backends.protocol import FileInfo, FilesUpdate, GrepMatch, Namespace, StoredFile
from deepmemory.errors import ConfigError


def merge_files(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reducer for the ``files`` channel: later values win; ``None`` deletes the file."""
    merged = dict(left or {})
    for path, value in (right or {}).items():
        if value is None:
            merged.pop(path, None)
        else:
            merged[path] = value
    return merged


class _StateFiles:
    """Repository over a snapshot of the ``files`` channel plus this call's changes."""

    def __init__(self, files: Mapping[str, Any]) -> None:
        self.files: dict[str, Any] = dict(files)
        self.updates: FilesUpdate = {}

    def _items(self) -> Iterator[tuple[str, StoredFile]]:
        for key, value in self.files.items():
            yield key, file_from_value(value)

    def file_get(self, namespace: Namespace, key: str) -> StoredFile | None:
        value = self.files.get(key)
        return None if value is None else file_from_value(value)

    def file_put(
        self, namespace: Namespace, key: str, file: StoredFile, *, expected_version: int | None
    ) -> int | None:
        old = self.files.get(key)
        if old is not None and expected_version is None:
            file.created_at = str(old.get("created_at") or file.created_at)
        value = file.to_value()
        self.files[key] = value
        self.updates[key] = value
        return 0

    def file_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]:
        return _scan.list_dir(self._items(), dir_key)

    def file_is_dir(self, namespace: Namespace, dir_key: str) -> bool:
        return _scan.is_dir(self.files, dir_key)

    def file_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]:
        return _scan.glob(self._items(), dir_key, regex, rel_prefix)

    def file_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]:
        return _scan.grep(self._items(), dir_key, literal, glob_regex, rel_prefix)

    def file_delete_tree(self, namespace: Namespace, key: str) -> list[str]:
        keys = _scan.tree_keys(list(self.files), key)
        for k in keys:
            del self.files[k]
            self.updates[k] = None
        return keys

    # Thread state is in memory: the async twins do the same work.
    afile_get = async_twin(file_get)
    afile_put = async_twin(file_put)
    afile_list_dir = async_twin(file_list_dir)
    afile_is_dir = async_twin(file_is_dir)
    afile_glob = async_twin(file_glob)
    afile_grep = async_twin(file_grep)
    afile_delete_tree = async_twin(file_delete_tree)


class StateBackend(FileOpsBackend):
    """Files in the agent's per-thread state: checkpointed with the thread, gone with it.

    Example:
        >>> backend = StateBackend()          # bound to each tool call by the file tools
        >>> factory = lambda rt: StateBackend(rt)   # the factory style works too
    """

    def __init__(self, runtime: Any = None) -> None:
        self.runtime = runtime

    def bind(self, runtime: Any) -> StateBackend:
        """A backend reading the state of ``runtime``'s graph run."""
        bound = self.mounted(self.mount)
        bound.runtime = runtime
        return bound

    # Keys are full virtual paths: one channel holds every StateBackend's files.
    def _key(self, path: str) -> str:
        return path

    def _vpath(self, key: str) -> str:
        return key

    def _repo(self) -> tuple[_StateFiles, Namespace]:
        state = getattr(self.runtime, "state", None)
        if state is None:
            raise ConfigError(
                "StateBackend keeps files in a graph's state, so it only works inside an "
                "agent run (the file tools bind it to each tool call). Outside a run, read "
                "files with agent.get_state(config).values['files']."
            )
        files = state.get("files") if isinstance(state, Mapping) else getattr(state, "files", None)
        return _StateFiles(files or {}), ()

    def _finish(self, result: Any, repo: _StateFiles) -> Any:
        if repo.updates:
            if isinstance(result, list):
                # Bulk uploads: each result carries the update for its own file.
                for item in result:
                    if item.error is None and item.path in repo.updates:
                        item.files_update = {item.path: repo.updates[item.path]}
            else:
                result.files_update = dict(repo.updates)
        return result
