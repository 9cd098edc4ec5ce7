"""deepmemory: long-term memory for LLM agents.

Example:
    >>> from deepmemory import create_deep_agent
"""

from deepmemory.agent import DeepAgent, create_deep_agent
from deepmemory.errors import ConfigError, ConflictError, DeepMemoryError, InvalidPathError
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
