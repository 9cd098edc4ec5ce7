"""Backends: where the agent's files live.

``StateBackend`` (per-thread graph state), ``StoreBackend`` (any LangGraph store),
``CompositeBackend`` (route by path prefix) and ``FilesystemBackend`` (a real
directory, confined to its root). Each is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepmemory._lazy import exports

if TYPE_CHECKING:
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

__getattr__, __dir__ = exports(
    __name__,
    {
        "Backend": "deepmemory.backends.protocol",
        "CompositeBackend": "deepmemory.backends.composite",
        "DeleteResult": "deepmemory.backends.protocol",
        "DownloadResult": "deepmemory.backends.protocol",
        "EditResult": "deepmemory.backends.protocol",
        "FileInfo": "deepmemory.backends.protocol",
        "FilesystemBackend": "deepmemory.backends.filesystem",
        "GlobResult": "deepmemory.backends.protocol",
        "GrepMatch": "deepmemory.backends.protocol",
        "GrepResult": "deepmemory.backends.protocol",
        "LimitsBackend": "deepmemory.backends.policies",
        "LsResult": "deepmemory.backends.protocol",
        "MoveResult": "deepmemory.backends.protocol",
        "ReadOnlyBackend": "deepmemory.backends.policies",
        "ReadResult": "deepmemory.backends.protocol",
        "StateBackend": "deepmemory.backends.state",
        "StoreBackend": "deepmemory.backends.store",
        "StoredFile": "deepmemory.backends.protocol",
        "SupportsFileQueries": "deepmemory.backends.protocol",
        "UploadResult": "deepmemory.backends.protocol",
        "WriteResult": "deepmemory.backends.protocol",
        "merge_files": "deepmemory.backends.state",
        "tenant_namespace": "deepmemory.backends.store",
        "validate_namespace": "deepmemory.backends.store",
    },
)
