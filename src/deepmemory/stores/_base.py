"""SQLStore: the LangGraph store and file repository shared by the SQLite and PostgreSQL stores.

It plans every operation as SQL steps (``_sql``) and leaves running them to the
engine: ``_execute`` (blocking) and ``_aexecute`` (async) run the steps of one call
in one transaction, in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self, TypeVar, cast

from langgraph.store.base import BaseStore, Op, Result

from deepmemory.backends.protocol import FileInfo, GrepMatch, Namespace, StoredFile
from deepmemory.stores._sql import (
    Dialect,
    Step,
    delete_tree,
    find_dir,
    glob_files,
    grep_files,
    list_dir,
    plan_op,
    select_file,
    write_file,
)

T = TypeVar("T")


class SQLStore(BaseStore):
    """A LangGraph ``BaseStore`` and ``SupportsFileQueries`` answered by SQL steps.

    Subclasses set ``dialect`` and run steps: ``_execute`` (blocking) and ``_aexecute``
    (async), each running the steps of one call in one transaction, in order.
    """

    dialect: Dialect
    supports_ttl = False

    def _execute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        raise NotImplementedError

    async def _aexecute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the store's connections; it cannot be used afterwards."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _plan(self, ops: Iterable[Op]) -> list[Step[Result]]:
        return [plan_op(self.dialect, op, type(self).__name__) for op in ops]

    def _one(self, step: Step[T]) -> T:
        return cast(T, self._execute([step])[0])

    async def _aone(self, step: Step[T]) -> T:
        return cast(T, (await self._aexecute([step]))[0])

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run LangGraph store operations, in order, in one transaction."""
        return self._execute(self._plan(ops))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async ``batch``."""
        return await self._aexecute(self._plan(ops))

    def file_get(self, namespace: Namespace, key: str) -> StoredFile | None:
        """The file at ``key``, with its version, or ``None``."""
        return self._one(select_file(self.dialect, namespace, key))

    async def afile_get(self, namespace: Namespace, key: str) -> StoredFile | None:
        """Async ``file_get``."""
        return await self._aone(select_file(self.dialect, namespace, key))

    def file_put(
        self, namespace: Namespace, key: str, file: StoredFile, *, expected_version: int | None
    ) -> int | None:
        """Write ``file``; the new version, or None if ``expected_version`` did not hold."""
        return self._one(write_file(self.dialect, namespace, key, file, expected_version))

    async def afile_put(
        self, namespace: Namespace, key: str, file: StoredFile, *, expected_version: int | None
    ) -> int | None:
        """Async ``file_put``."""
        return await self._aone(write_file(self.dialect, namespace, key, file, expected_version))

    def _put_many(
        self, namespace: Namespace, files: Sequence[tuple[str, StoredFile]]
    ) -> list[Step[Any]]:
        return [write_file(self.dialect, namespace, key, file, None) for key, file in files]

    def file_put_many(self, namespace: Namespace, files: Sequence[tuple[str, StoredFile]]) -> None:
        """Blind writes of many files (as ``file_put`` without a version) in one transaction."""
        if files:
            self._execute(self._put_many(namespace, files))

    async def afile_put_many(
        self, namespace: Namespace, files: Sequence[tuple[str, StoredFile]]
    ) -> None:
        """Async ``file_put_many``."""
        if files:
            await self._aexecute(self._put_many(namespace, files))

    def file_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]:
        """Direct children of ``dir_key``, sorted by path; contents are never read."""
        return self._one(list_dir(self.dialect, namespace, dir_key))

    async def afile_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]:
        """Async ``file_list_dir``."""
        return await self._aone(list_dir(self.dialect, namespace, dir_key))

    def file_is_dir(self, namespace: Namespace, dir_key: str) -> bool:
        """Whether any file exists below ``dir_key``."""
        return self._one(find_dir(self.dialect, namespace, dir_key))

    async def afile_is_dir(self, namespace: Namespace, dir_key: str) -> bool:
        """Async ``file_is_dir``."""
        return await self._aone(find_dir(self.dialect, namespace, dir_key))

    def file_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]:
        """Files below ``dir_key`` whose ``rel_prefix + relative key`` fully matches ``regex``."""
        step = glob_files(self.dialect, namespace, dir_key, regex, rel_prefix)
        return [] if step is None else self._one(step)

    async def afile_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]:
        """Async ``file_glob``."""
        step = glob_files(self.dialect, namespace, dir_key, regex, rel_prefix)
        return [] if step is None else await self._aone(step)

    def file_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]:
        """Lines containing ``literal`` in text files below ``dir_key``, by path then line."""
        step = grep_files(self.dialect, namespace, dir_key, literal, glob_regex, rel_prefix)
        return [] if step is None else self._one(step)

    async def afile_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]:
        """Async ``file_grep``."""
        step = grep_files(self.dialect, namespace, dir_key, literal, glob_regex, rel_prefix)
        return [] if step is None else await self._aone(step)

    def file_delete_tree(self, namespace: Namespace, key: str) -> list[str]:
        """Delete the file at ``key`` and every file below it; return their keys."""
        return self._one(delete_tree(self.dialect, namespace, key))

    async def afile_delete_tree(self, namespace: Namespace, key: str) -> list[str]:
        """Async ``file_delete_tree``."""
        return await self._aone(delete_tree(self.dialect, namespace, key))
