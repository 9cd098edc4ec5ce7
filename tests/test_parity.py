"""Sync and async never drift apart: every operation has an async twin with the same signature."""

from __future__ import annotations

import inspect

import pytest

from deepmemory.backends import (
    Backend,
    CompositeBackend,
    FilesystemBackend,
    StateBackend,
    StoreBackend,
    SupportsFileQueries,
)

OPERATIONS = [
    "ls",
    "read",
    "write",
    "edit",
    "delete",
    "glob",
    "grep",
    "upload_files",
    "download_files",
]


def _params(func) -> list[tuple[str, object, object]]:
    sig = inspect.signature(func)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(
    "cls", [Backend, StateBackend, StoreBackend, CompositeBackend, FilesystemBackend]
)
@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_has_an_async_twin_with_the_same_parameters(cls, name):
    sync, asynchronous = getattr(cls, name), getattr(cls, "a" + name)
    assert inspect.iscoroutinefunction(asynchronous)
    assert _params(sync) == _params(asynchronous)


def test_every_file_query_of_the_store_fast_path_has_an_async_twin():
    names = [n for n in dir(SupportsFileQueries) if n.startswith("file_")]
    assert len(names) == 7
    for name in names:
        assert _params(getattr(SupportsFileQueries, name)) == _params(
            getattr(SupportsFileQueries, "a" + name)
        )
