"""Machinery every backend shares: its mount point, runtime binding, and sync/async drivers.

**Mount point.** A backend serves the virtual paths below its ``mount`` (``/`` unless a
``CompositeBackend`` route mounts it at, say, ``/memories``). Methods take and return
full virtual paths, so messages always show the path the model wrote; storage keys are
relative to the mount (``/notes.txt`` for ``/memories/notes.txt``).

**Binding.** Backends built without a runtime (``StateBackend()``, ``StoreBackend()``)
are bound to the tool call's runtime by the file tools (``bind``), so plain instances
and the seed's factory style (``lambda rt: StateBackend(rt)``) both work.

**One body for sync and async.** An operation is written once as a generator that
yields :class:`Call` requests (I/O) and receives their results; :func:`run_sync` and
:func:`run_async` drive it against a target, calling ``name`` or ``a`` + ``name``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from deepmemory import errors, paths
from deepmemory.errors import InvalidPathError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One I/O request of an operation: ``target.name(*args, **kwargs)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


Op = Generator[Call, Any, T]

# A Call of this name pauses for ``args[0]`` seconds instead of calling the target.
BACKOFF = "backoff"


def run_sync(op: Op[T], target: Any) -> T:
    """Drive an operation with blocking calls."""
    try:
        call = next(op)
        while True:
            if call.name == BACKOFF:
                time.sleep(call.args[0])
                result = None
            else:
                result = getattr(target, call.name)(*call.args, **call.kwargs)
            call = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]  # generator return value is T


async def run_async(op: Op[T], target: Any) -> T:
    """Drive an operation with awaited ``a``-prefixed calls."""
    try:
        call = next(op)
        while True:
            if call.name == BACKOFF:
                await asyncio.sleep(call.args[0])
                result = None
            else:
                result = await getattr(target, "a" + call.name)(*call.args, **call.kwargs)
            call = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]  # generator return value is T


def async_twin(method: Any) -> Any:
    """The ``a``-twin of a repository method that does no I/O (in-memory state)."""

    async def twin(self: Any, *args: Any, **kwargs: Any) -> Any:
        return method(self, *args, **kwargs)

    return twin


class BaseBackend:
    """Mount-point mapping and runtime binding; subclasses implement the operations."""

    mount: str = "/"

    def mounted(self, prefix: str) -> Self:
        """A copy of this backend serving the paths below ``prefix``."""
        clone = copy.copy(self)
        clone.mount = paths.validate(prefix)
        return clone

    def bind(self, runtime: Any) -> Self:
        """This backend, ready for one tool call of a graph run (default: unchanged)."""
        return self

    def _key(self, path: str) -> str:
        """Storage key of a normalised virtual path at or below the mount.

        Raises:
            InvalidPathError: the path is outside the mount (a backend used directly,
                not through a ``CompositeBackend`` route, was given a foreign path).
        """
        if self.mount == "/":
            return path
        if not self._serves(path):
            raise InvalidPathError(errors.outside_mount(path, self.mount))
        rest = path[len(self.mount) :]
        return rest if rest else "/"

    def _vpath(self, key: str) -> str:
        """Virtual path of a storage key (directory keys keep their trailing slash)."""
        if self.mount == "/":
            return key
        return self.mount + key if key != "/" else self.mount

    def _serves(self, path: str) -> bool:
        return paths.is_within(path, self.mount)


def move_problem(mount: str, old: str, new: str) -> str | None:
    """Why normalised paths ``old`` cannot move to ``new`` in a backend at ``mount``."""
    why = None
    if mount in (old, new):
        why = f"{mount!r} is the top of this storage"
    elif old == new:
        why = "they are the same path"
    elif paths.is_within(new, old):
        why = "a directory cannot move into itself"
    return None if why is None else errors.bad_move(old, new, why)
