"""Concurrent async edits of one file, applied together in one compare-and-swap write.

An in-place edit is one statement, but each rewrites the whole file and its indexes:
twenty edits of one file started together (an agent's parallel tool calls, many
workers ticking off one checklist) cost twenty writes queued on one row lock. Here
the first edit of a file on an event loop leads: edits of that file by the same author
that start while it runs join its group, and the group costs one read and one write:

* the leader reads the file and its version, applies the edits in arrival order with
  the in-place edit's rule (``old_string`` occurs exactly once in the text as it is
  by then, else that edit does nothing), and writes the result only if the version
  still holds (compare-and-swap); if another writer got there first, it reads again;
* each edit that applied gets the new version, each one that did not gets ``None``,
  as from ``file_edit``: its caller then looks at the file again to say why, exactly
  as after a failed in-place edit; so no edit reported as done is ever lost;
* the write records one revision, by the group's author: what was committed.

A lone edit is still the one in-place statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deepmemory.backends.protocol import Author, Namespace, RevisionOp, StoredFile

if TYPE_CHECKING:
    from deepmemory.stores._base import SQLStore

Edit = tuple[str, str, str]  # old_string, new_string, modified_at
# Reads and writes a group tries before handing its edits back (callers then retry alone).
MAX_ATTEMPTS = 5


@dataclass(slots=True)
class _Pending:
    edit: Edit
    future: asyncio.Future[int | None]


def apply_edits(text: str, edits: list[Edit]) -> tuple[str, list[bool]]:
    """``text`` after each edit in turn (where its old string occurs once); which applied."""
    applied = []
    for old, new, _ in edits:
        once = text.count(old) == 1
        if once:
            text = text.replace(old, new, 1)
        applied.append(once)
    return text, applied


def _settle(group: list[_Pending], results: list[int | None]) -> None:
    for pending, result in zip(group, results, strict=True):
        if not pending.future.done():
            pending.future.set_result(result)


class EditGroups:
    """The edit groups of one event loop, by file, author and kind of change."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, list[_Pending]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def edit(
        self,
        store: SQLStore,
        namespace: Namespace,
        key: str,
        edit: Edit,
        author: Author | None,
        op: RevisionOp,
    ) -> int | None:
        """``store.afile_edit``'s result, sharing a write with concurrent edits of ``key``."""
        group_key = (namespace, key, author, op, store._fresh())
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(group_key)
        if waiting is not None:  # a group of this file is running: join the next round
            waiting.append(_Pending(edit, future))
            return await future
        self._waiting[group_key] = [_Pending(edit, future)]
        await asyncio.sleep(0)  # edits started in the same step of the loop join now
        await self._round(store, group_key, namespace, key, author, op)
        return await future

    async def _round(
        self,
        store: SQLStore,
        group_key: Hashable,
        namespace: Namespace,
        key: str,
        author: Author | None,
        op: RevisionOp,
    ) -> None:
        group = self._waiting[group_key]
        self._waiting[group_key] = []  # edits arriving from now on wait for the next round
        try:
            await _apply(store, namespace, key, group, author, op)
        except BaseException as exc:
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._waiting.get(group_key):
                # The next round runs on its own, so this caller returns now.
                task = asyncio.get_running_loop().create_task(
                    self._round(store, group_key, namespace, key, author, op)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._waiting.pop(group_key, None)


async def _apply(
    store: SQLStore,
    namespace: Namespace,
    key: str,
    group: list[_Pending],
    author: Author | None,
    op: RevisionOp,
) -> None:
    edits = [pending.edit for pending in group]
    if len(edits) == 1:
        version = await store._aone(store._edit(namespace, key, edits[0], author, op))
        _settle(group, [version])
        return
    for _ in range(MAX_ATTEMPTS):
        file: Any = await store.afile_get(namespace, key, before_write=True)
        if file is None or file.encoding != "utf-8" or file.version is None:
            break  # missing, binary or not versioned: every caller finds out why alone
        text, applied = apply_edits(file.content, edits)
        if not any(applied):
            break
        modified_at = max(edit[2] for edit, ok in zip(edits, applied, strict=True) if ok)
        new = StoredFile(text, "utf-8", file.created_at, modified_at)
        version = await store.afile_put(
            namespace, key, new, expected_version=file.version, author=author, op=op
        )
        if version is not None:
            _settle(group, [version if ok else None for ok in applied])
            return
    _settle(group, [None] * len(group))
