"""deepagents' backends as deepmemory routes: ``DeepAgentsBackend`` passes our backend
conformance suite around deepagents' own filesystem and store backends, alone and as a
route of our ``CompositeBackend``, and its failures reach the model as messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from deepagents.backends import FilesystemBackend as TheirFilesystemBackend
from deepagents.backends.store import StoreBackend as TheirStoreBackend
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.integrations.deepagents import DeepAgentsBackend
from deepmemory.testing.conformance import BackendConformance
from deepmemory.testing.harness import Harness

KINDS = ["filesystem", "filesystem-route", "store", "store-route"]

# What a wrapped backend itself does differently; strict, so a fix upstream is noticed.
THEIRS = {
    ("test_crlf_content_reads_cleanly_and_is_stored_exactly", "filesystem"): (
        "deepagents' FilesystemBackend reads files in text mode, so its edit_file rewrites "
        "a CRLF file's line endings as LF"
    ),
}


def _wrapped(kind: str, tmp_path: Path) -> DeepAgentsBackend:
    if kind.startswith("filesystem"):
        (tmp_path / "root").mkdir()
        return DeepAgentsBackend(TheirFilesystemBackend(root_dir=tmp_path / "root"))
    store = InMemoryStore()
    return DeepAgentsBackend(TheirStoreBackend(store=store, namespace=lambda _rt: ("da",)))


def make_harness(kind: str, mode: str, tmp_path: Path) -> Harness:
    wrapped = _wrapped(kind, tmp_path)
    if kind.endswith("route"):
        backend = CompositeBackend(
            default=StoreBackend(store=InMemoryStore()), routes={"/work/": wrapped}
        )
        return Harness(backend, mode=mode, root="/work", caps=frozenset())
    return Harness(wrapped, mode=mode, caps=frozenset())


class TestConformance(BackendConformance):
    @pytest.fixture(
        params=[(k, m) for k in KINDS for m in ("sync", "async")], ids=lambda p: f"{p[0]}-{p[1]}"
    )
    def fs(self, request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
        kind, mode = request.param
        reason = THEIRS.get((request.node.originalname, kind.removesuffix("-route")))
        if reason:
            request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        return make_harness(kind, mode, tmp_path)
