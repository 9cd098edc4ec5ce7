"""Backends: where the agent's files live.

``StateBackend`` (per-thread graph state), ``StoreBackend`` (any LangGraph store),
``CompositeBackend`` (route by path prefix) and ``FilesystemBackend`` (a real
directory, confined to its root).
"""

from deepmemory.backends.composite import CompositeBackend
from deepmemory.backends.filesystem import FilesystemBackend
from deepmemory.backends.policies import LimitsBackend, ReadOnlyBackend
from deepmemory.backends.protocol import (
    Backend,
    DeleteResult,
    DownloadResult,
    EditResult,
    FileInfo,
    GlobResult,
    GrepMatch,
    GrepResult,
    LsResult,
    MoveResult,
    ReadResult,
    StoredFile,
    SupportsFileQueries,
    UploadResult,
    WriteResult,
)
from deepmemory.backends.state import StateBackend, merge_files
from deepmemory.backends.store import StoreBackend, tenant_namespace, validate_namespace

__all__ = [
    "Backend",
    "CompositeBackend",
    "DeleteResult",
    "DownloadResult",
    "EditResult",
    "FileInfo",
    "FilesystemBackend",
    "GlobResult",
    "GrepMatch",
    "GrepResult",
    "LimitsBackend",
    "LsResult",
    "MoveResult",
    "ReadOnlyBackend",
    "ReadResult",
    "StateBackend",
    "StoreBackend",
    "StoredFile",
    "SupportsFileQueries",
    "UploadResult",
    "WriteResult",
    "merge_files",
    "tenant_namespace",
    "validate_namespace",
]
