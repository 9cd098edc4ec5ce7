"""Middleware that gives an agent its file tools and subagents."""

from deepmemory.middleware.filesystem import FilesystemMiddleware, FilesystemState
from deepmemory.middleware.subagents import CompiledSubAgent, SubAgent, SubAgentMiddleware

__all__ = [
    "CompiledSubAgent",
    "FilesystemMiddleware",
    "FilesystemState",
    "SubAgent",
    "SubAgentMiddleware",
]
