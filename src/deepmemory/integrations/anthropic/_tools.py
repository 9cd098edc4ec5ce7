"""The Anthropic SDK's memory tool classes, over a deepmemory backend.

``MemoryTool(backend)`` and ``AsyncMemoryTool(backend)`` subclass the SDK's
``BetaAbstractMemoryTool`` and ``BetaAsyncAbstractMemoryTool``, so they go wherever the
SDK takes a memory tool (``client.beta.messages.tool_runner(tools=[...])``). Each method
drives one command of ``_commands`` with the backend's sync methods (``read``,
``write``, ``move``...) or its async twins (``aread``, ``awrite``, ``amove``...).
"""

from __future__ import annotations

from typing import Any

from anthropic.lib.tools import BetaAbstractMemoryTool, BetaAsyncAbstractMemoryTool, ToolError
from anthropic.types.beta import (
    BetaCacheControlEphemeralParam,
    BetaMemoryTool20250818CreateCommand,
    BetaMemoryTool20250818DeleteCommand,
    BetaMemoryTool20250818InsertCommand,
    BetaMemoryTool20250818RenameCommand,
    BetaMemoryTool20250818StrReplaceCommand,
    BetaMemoryTool20250818ViewCommand,
)

from deepmemory import errors
from deepmemory.backends._base import Op, run_async, run_sync
from deepmemory.integrations.anthropic._commands import Commands


def _sync(op: Op[str], backend: Any) -> str:
    try:
        return run_sync(op, backend)
    except errors.InvalidPathError as exc:  # a backend that refuses a path by raising
        raise ToolError(str(exc)) from None


async def _async(op: Op[str], backend: Any) -> str:
    try:
        return await run_async(op, backend)
    except errors.InvalidPathError as exc:
        raise ToolError(str(exc)) from None


_FIELDS = (
    *("command", "path", "view_range", "file_text", "old_str", "new_str"),
    *("insert_line", "insert_text", "old_path", "new_path"),
)


def _args(command: object) -> dict[str, Any]:
    # The SDK builds commands without validating them: an argument may be missing.
    return {name: getattr(command, name, None) for name in _FIELDS}


class MemoryTool(BetaAbstractMemoryTool):
    """Claude's memory tool with its ``/memories`` in a deepmemory backend.

    Example:
        >>> from langgraph.store.memory import InMemoryStore
        >>> from deepmemory.backends import StoreBackend
        >>> backend = StoreBackend(store=InMemoryStore(), namespace=("alice",))
        >>> tool = MemoryTool(backend.mounted("/memories"))
        >>> tool.call({"command": "create", "path": "/memories/prefs.md", "file_text": "tea"})
        'File created successfully at: /memories/prefs.md'

        With the SDK's tool runner: ``client.beta.messages.tool_runner(model=...,
        max_tokens=..., tools=[tool], messages=[...])``.
    """

    def __init__(
        self, backend: Any, *, cache_control: BetaCacheControlEphemeralParam | None = None
    ) -> None:
        super().__init__(cache_control=cache_control)
        self.backend = backend

    def _run(self, command: object) -> str:
        return _sync(Commands().run(_args(command)), self.backend)

    def view(self, command: BetaMemoryTool20250818ViewCommand) -> str:
        """A file's numbered lines, or a directory two levels deep."""
        return self._run(command)

    def create(self, command: BetaMemoryTool20250818CreateCommand) -> str:
        """A new file; an existing file or directory is never replaced."""
        return self._run(command)

    def str_replace(self, command: BetaMemoryTool20250818StrReplaceCommand) -> str:
        """Replace the one occurrence of ``old_str`` with ``new_str``."""
        return self._run(command)

    def insert(self, command: BetaMemoryTool20250818InsertCommand) -> str:
        """Insert ``insert_text`` after line ``insert_line``."""
        return self._run(command)

    def delete(self, command: BetaMemoryTool20250818DeleteCommand) -> str:
        """Delete a file, or a directory with everything below it."""
        return self._run(command)

    def rename(self, command: BetaMemoryTool20250818RenameCommand) -> str:
        """Move a file or a directory to a free path."""
        return self._run(command)

    def clear_all_memory(self) -> str:
        """Delete everything below ``/memories``."""
        return _sync(Commands().clear(), self.backend)


class AsyncMemoryTool(BetaAsyncAbstractMemoryTool):
    """``MemoryTool`` for the SDK's async client, over the backend's async methods.

    Example:
        >>> from deepmemory.backends import StoreBackend
        >>> tool = AsyncMemoryTool(StoreBackend(namespace=("alice",)).mounted("/memories"))
    """

    def __init__(
        self, backend: Any, *, cache_control: BetaCacheControlEphemeralParam | None = None
    ) -> None:
        super().__init__(cache_control=cache_control)
        self.backend = backend

    async def _run(self, command: object) -> str:
        return await _async(Commands().run(_args(command)), self.backend)

    async def view(self, command: BetaMemoryTool20250818ViewCommand) -> str:
        """Async ``MemoryTool.view``."""
        return await self._run(command)

    async def create(self, command: BetaMemoryTool20250818CreateCommand) -> str:
        """Async ``MemoryTool.create``."""
        return await self._run(command)

    async def str_replace(self, command: BetaMemoryTool20250818StrReplaceCommand) -> str:
        """Async ``MemoryTool.str_replace``."""
        return await self._run(command)

    async def insert(self, command: BetaMemoryTool20250818InsertCommand) -> str:
        """Async ``MemoryTool.insert``."""
        return await self._run(command)

    async def delete(self, command: BetaMemoryTool20250818DeleteCommand) -> str:
        """Async ``MemoryTool.delete``."""
        return await self._run(command)

    async def rename(self, command: BetaMemoryTool20250818RenameCommand) -> str:
        """Async ``MemoryTool.rename``."""
        return await self._run(command)

    async def clear_all_memory(self) -> str:
        """Async ``MemoryTool.clear_all_memory``."""
        return await _async(Commands().clear(), self.backend)
