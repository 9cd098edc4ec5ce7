"""deepmemory: long-term memory for LLM agents.

The agent and its middleware are imported when first used, so that importing a store
(or starting the command line) does not load LangChain's agent stack.

Example:
    >>> from deepmemory import create_deep_agent
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepmemory._lazy import exports
from deepmemory.errors import ConfigError, ConflictError, DeepMemoryError, InvalidPathError

if TYPE_CHECKING:
    from deepmemory.agent import DeepAgent, create_deep_agent
    from deepmemory.middleware import CompiledSubAgent, FilesystemMiddleware, SubAgent

__all__ = [
    "CompiledSubAgent",
    "ConfigError",
    "ConflictError",
    "DeepAgent",
    "DeepMemoryError",
    "FilesystemMiddleware",
    "InvalidPathError",
    "SubAgent",
    "create_deep_agent",
]


__getattr__, __dir__ = exports(
    __name__,
    {
        "DeepAgent": "deepmemory.agent",
        "create_deep_agent": "deepmemory.agent",
        "CompiledSubAgent": "deepmemory.middleware",
        "FilesystemMiddleware": "deepmemory.middleware",
        "SubAgent": "deepmemory.middleware",
    },
)
