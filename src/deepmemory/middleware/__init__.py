"""Middleware that gives an agent its file tools and subagents (imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepmemory._lazy import exports

if TYPE_CHECKING:
    from deepmemory.middleware.filesystem import FilesystemMiddleware, FilesystemState
    from deepmemory.middleware.subagents import CompiledSubAgent, SubAgent, SubAgentMiddleware

__all__ = [
    "CompiledSubAgent",
    "FilesystemMiddleware",
    "FilesystemState",
    "SubAgent",
    "SubAgentMiddleware",
]

__getattr__, __dir__ = exports(
    __name__,
    {
        "CompiledSubAgent": "deepmemory.middleware.subagents",
        "FilesystemMiddleware": "deepmemory.middleware.filesystem",
        "FilesystemState": "deepmemory.middleware.filesystem",
        "SubAgent": "deepmemory.middleware.subagents",
        "SubAgentMiddleware": "deepmemory.middleware.subagents",
    },
)
