"""CompositeBackend: routing on normalised paths, routes in listings, searches across routes."""

from __future__ import annotations

import asyncio

import pytest
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import CompositeBackend, FilesystemBackend, StateBackend, StoreBackend
from deepmemory.errors import ConfigError
from deepmemory.testing.harness import Harness


@pytest.fixture(params=["sync", "async"])
def fs(request, tmp_path) -> Harness:
    store = InMemoryStore()
    backend = CompositeBackend(
        default=StateBackend(),
        routes={
            "/memories/": StoreBackend(),
            "/memories/policies/": StoreBackend(namespace=("policies",)),
            "/disk/": FilesystemBackend(tmp_path / "disk"),
        },
    )
    return Harness(backend, mode=request.param, in_graph=True, store=store)


def seed(fs: Harness) -> None:
    for path in ["/draft.txt", "/memories/a.txt", "/memories/policies/p.txt", "/disk/d.txt"]:
        assert fs.write(path, f"needle in {path}\n").error is None


def test_each_route_stores_its_files_under_keys_relative_to_the_route(fs):
    seed(fs)
    assert {i.key for i in fs.store.search(("filesystem",))} == {"/a.txt"}
    assert {i.key for i in fs.store.search(("policies",))} == {"/p.txt"}
    assert set(fs.files_in_state()) == {"/draft.txt"}


def test_ls_shows_routes_as_directories_beside_the_default_files(fs):
    seed(fs)
    assert [e.path for e in fs.ls("/").entries] == ["/disk/", "/draft.txt", "/memories/"]
    assert [e.path for e in fs.ls("/memories").entries] == [
        "/memories/a.txt",
        "/memories/policies/",
    ]


def test_an_empty_route_lists_as_an_empty_directory(fs):
    assert fs.ls("/disk/").entries == [] and fs.ls("/disk/").error is None


def test_glob_and_grep_over_the_root_search_every_backend_with_agent_paths(fs):
    seed(fs)
    everything = ["/disk/d.txt", "/draft.txt", "/memories/a.txt", "/memories/policies/p.txt"]
    assert [f.path for f in fs.glob("**/*.txt").files] == everything
    assert [m.path for m in fs.grep("needle").matches] == everything
    assert [f.path for f in fs.glob("/memories/**").files] == everything[2:]
    assert [m.path for m in fs.grep("needle", "/memories").matches] == everything[2:]
    assert [f.path for f in fs.glob("memories/*.txt").files] == ["/memories/a.txt"]
    assert [m.path for m in fs.grep("needle", glob="p.txt").matches] == everything[3:]


def test_errors_name_the_path_as_the_agent_wrote_it(fs):
    assert "'/memories/nope.txt' not found" in fs.read("/memories/nope.txt").error
    assert "ls('/memories')" in fs.read("/memories/nope.txt").error


def test_routing_is_decided_on_the_normalised_path(fs):
    assert fs.write("/memories//x.txt", "routed").error is None
    assert fs.store.get(("filesystem",), "/x.txt").value["content"] == "routed"
    assert "'..'" in fs.write("/draft/../memories/y.txt", "no").error
    assert fs.write("/memoriesX/z.txt", "state").error is None
    assert "/memoriesX/z.txt" in fs.files_in_state()


def test_deleting_a_route_top_is_refused_and_keeps_memory(fs):
    seed(fs)
    assert "refusing" in fs.delete("/memories").error
    assert fs.read("/memories/a.txt").error is None


def test_uploads_and_downloads_are_routed_per_file_and_keep_their_order(fs):
    files = [("/disk/b.bin", b"\xff"), ("/memories/m.txt", b"m"), ("/s.txt", b"s")]
    assert [r.path for r in fs.upload_files(files)] == [f[0] for f in files]
    assert [d.content for d in fs.download_files([f[0] for f in files])] == [b"\xff", b"m", b"s"]


def test_route_prefixes_must_be_valid_paths():
    with pytest.raises(ConfigError):
        CompositeBackend(default=StateBackend(), routes={"/a/../b/": StoreBackend()})
    with pytest.raises(ConfigError):
        CompositeBackend(default=StateBackend(), routes={"/": StoreBackend()})


def test_async_searches_across_routes_run_concurrently():
    calls: list[str] = []

    class Slow(StoreBackend):
        async def aglob(self, pattern, path=None):
            calls.append(f"start {self.mount}")
            await asyncio.sleep(0.05)
            calls.append(f"end {self.mount}")
            return await super().aglob(pattern, path)

    store = InMemoryStore()
    backend = CompositeBackend(
        default=StoreBackend(store=store, namespace=("d",)),
        routes={
            "/a/": Slow(store=store, namespace=("a",)),
            "/b/": Slow(store=store, namespace=("b",)),
        },
    )
    asyncio.run(backend.aglob("**"))
    assert calls[:2] == ["start /a", "start /b"]


def test_a_route_nested_deep_below_a_directory_is_listed_on_the_way_down():
    backend = CompositeBackend(
        default=StateBackend(), routes={"/data/team/shared/": StoreBackend(store=InMemoryStore())}
    )
    fs = Harness(backend, in_graph=True)
    assert [e.path for e in fs.ls("/").entries] == ["/data/"]
    assert [e.path for e in fs.ls("/data").entries] == ["/data/team/"]
    assert [e.path for e in fs.ls("/data/team/").entries] == ["/data/team/shared/"]


def test_a_route_top_is_a_directory_and_cannot_be_written_as_a_file(fs):
    for result in (
        fs.write("/memories", "x"),
        fs.upload_files([("/memories/", b"x")])[0],
        fs.upload_files([("/disk", b"x")])[0],
    ):
        assert result.error is not None and "directory" in result.error
    assert fs.store.search(("filesystem",)) == []


def test_moves_stay_within_one_storage(fs):
    seed(fs)
    assert fs.move("/memories/a.txt", "/memories/notes/a.txt").error is None
    assert fs.read("/memories/notes/a.txt").lines == ["needle in /memories/a.txt"]
    assert {i.key for i in fs.store.search(("filesystem",))} == {"/notes/a.txt"}
    crossing = fs.move("/memories/notes/a.txt", "/disk/a.txt").error
    assert "different storages" in crossing and "read_file" in crossing
    assert "different storages" in fs.move("/draft.txt", "/memories/draft.txt").error
    assert "top of a separate storage" in fs.move("/memories", "/old-memories").error
    assert "top of a separate storage" in fs.move("/disk/d.txt", "/disk").error
    fs.write("/tree/x.txt", "x")
    assert fs.move("/tree", "/memories/tree").error.count("different storages") == 1
    assert fs.move("/disk/d.txt", "/disk/e.txt").error is None
    assert fs.move("/draft.txt", "/drafts/first.txt").error is None
    assert set(fs.files_in_state()) >= {"/drafts/first.txt"}
    assert "/draft.txt" not in {k for k, v in fs.files_in_state().items() if v is not None}
