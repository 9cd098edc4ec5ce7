"""deepagents' backends as deepmemory routes: ``DeepAgentsBackend`` passes our backend
conformance suite around deepagents' own filesystem and store backends, alone and as a
route of our ``CompositeBackend``, and its failures reach the model as messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from deepagents.backends import FilesystemBackend as TheirFilesystemBackend
from deepagents.backends.protocol import BackendProtocol
from deepagents.backends.protocol import GlobResult as TheirGlobResult
from deepagents.backends.protocol import GrepResult as TheirGrepResult
from deepagents.backends.protocol import LsResult as TheirLsResult
from deepagents.backends.protocol import ReadResult as TheirReadResult
from deepagents.backends.protocol import WriteResult as TheirWriteResult
from deepagents.backends.store import StoreBackend as TheirStoreBackend
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.store.memory import InMemoryStore

from deepmemory import ConfigError, create_deep_agent, errors
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.integrations.deepagents import DeepAgentsBackend
from deepmemory.testing import ScriptedChatModel, calls, tool_call
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
# What a wrapped backend bounds by its own budget, so that the answer depends on the
# machine's load: skipped (``test_a_listing_cut_short_by_the_wrapped_backend_says_so``
# covers what we do then).
BUDGETED = {
    ("test_a_directory_of_10000_files_lists_completely", "filesystem"): (
        "deepagents' FilesystemBackend stops a glob walk after 5 s; 10,000 files on a "
        "loaded machine can take longer"
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
        budget = BUDGETED.get((request.node.originalname, kind.removesuffix("-route")))
        if budget:
            pytest.skip(budget)
        return make_harness(kind, mode, tmp_path)


# -- beyond the suite ---------------------------------------------------------------------


class Recording(BackendProtocol):
    """A deepagents backend that records every path it is given and can be told to fail."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.seen: list[str] = []
        self.fail = fail
        self.files: dict[str, str] = {}

    def _saw(self, path: str | None) -> None:
        self.seen.append(str(path))
        if self.fail is not None:
            raise self.fail

    def write(self, file_path: str, content: str) -> TheirWriteResult:
        self._saw(file_path)
        self.files[file_path] = content
        return TheirWriteResult(path=file_path)

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> TheirReadResult:
        self._saw(file_path)
        if file_path not in self.files:
            return TheirReadResult(error=f"File '{file_path}' not found")
        lines = self.files[file_path].splitlines()
        window = lines[offset : offset + limit]
        data = {"content": "\n".join(window), "encoding": "utf-8"}
        return TheirReadResult(
            file_data=data,  # type: ignore[arg-type]
            total_lines=len(lines),
            start_line=offset + 1,
            end_line=offset + len(window),
        )

    def ls(self, path: str) -> TheirLsResult:
        self._saw(path)
        return TheirLsResult(entries=[])

    def grep(self, pattern, path=None, glob=None):  # type: ignore[no-untyped-def]
        self._saw(path)
        return TheirGrepResult(matches=[])

    def glob(self, pattern: str, path: str | None = None) -> TheirGlobResult:
        self._saw(path)
        return TheirGlobResult(matches=[])


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "bad",
    ["/../etc/passwd", "/a\x00b.txt", "/" + "x" * 5000, "/\u202eevil.txt", "relative.txt"],
)
@pytest.mark.parametrize("mount", ["", "/work"])
def test_paths_our_rules_refuse_never_reach_the_wrapped_backend(
    mode: str, bad: str, mount: str
) -> None:
    inner = Recording()
    if mount:
        backend = CompositeBackend(
            default=StateBackend(), routes={"/work/": DeepAgentsBackend(inner)}
        )
        fs = Harness(backend, mode=mode, in_graph=True)
        bad = mount + bad if bad.startswith("/") else bad
    else:
        fs = Harness(DeepAgentsBackend(inner), mode=mode)
    assert fs.write(bad, "x").error.startswith("Error")
    assert fs.read(bad).error.startswith("Error")
    assert fs.edit(bad, "a", "b").error.startswith("Error")
    assert fs.delete(bad).error.startswith("Error")
    assert inner.seen == []


def test_the_wrapped_backend_sees_paths_below_the_route_and_the_model_sees_its_own() -> None:
    inner = Recording()
    backend = CompositeBackend(default=StateBackend(), routes={"/work/": DeepAgentsBackend(inner)})
    fs = Harness(backend, in_graph=True)
    assert fs.write("/work/notes/a.txt", "one\ntwo\n").error is None
    assert inner.files == {"/notes/a.txt": "one\ntwo\n"}
    assert fs.read("/work/notes/a.txt").lines == ["one", "two"]
    error = fs.read("/work/notes/missing.txt").error
    assert error == errors.not_found("/work/notes/missing.txt")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failing_or_partial_backend_answers_the_model_with_an_error(mode: str) -> None:
    broken = Harness(DeepAgentsBackend(Recording(fail=OSError("disk on fire"))), mode=mode)
    for result in (
        broken.write("/a.txt", "x"),
        broken.read("/a.txt"),
        broken.ls("/"),
        broken.glob("*.txt"),
        broken.grep("x"),
    ):
        assert result.error is not None and "failed unexpectedly (OSError)" in result.error
    partial = Harness(DeepAgentsBackend(Recording()), mode=mode)
    partial.write("/a.txt", "x")
    for result in (partial.edit("/a.txt", "x", "y"), partial.delete("/a.txt")):
        assert result.error is not None and "not available here" in result.error
    (upload,) = partial.upload_files([("/b.bin", b"\xff")])
    assert "not available here" in upload.error
    assert partial.read("/a.txt").lines == ["x"]


def test_a_factory_builds_the_wrapped_backend_per_tool_call(tmp_path: Path) -> None:
    built: list[object] = []

    def factory(runtime: object) -> TheirFilesystemBackend:
        built.append(runtime)
        return TheirFilesystemBackend(root_dir=tmp_path)

    route = DeepAgentsBackend(factory)
    with pytest.raises(ConfigError, match=r"bind\(runtime\)"):
        route.ls("/")
    bound = route.bind("runtime-1")
    assert bound.write("/x.txt", "hi").error is None
    assert built == ["runtime-1"] and (tmp_path / "x.txt").read_text() == "hi"


def test_misconfigurations_say_how_to_fix_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="virtual_mode=True"):
        DeepAgentsBackend(TheirFilesystemBackend(root_dir=tmp_path, virtual_mode=False))
    with pytest.raises(ConfigError, match="BackendProtocol"):
        DeepAgentsBackend("not a backend")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="DeepAgentsBackend"):
        CompositeBackend(
            default=StateBackend(), routes={"/work/": TheirFilesystemBackend(root_dir=tmp_path)}
        )


def test_searches_from_the_top_reach_into_a_deepagents_route(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("import os\nTODO: fix\n")
    (tmp_path / "README.md").write_text("TODO: docs\n")
    store = InMemoryStore()
    backend = CompositeBackend(
        default=StateBackend(),
        routes={
            "/memories/": StoreBackend(),
            "/repo/": DeepAgentsBackend(TheirFilesystemBackend(root_dir=tmp_path)),
        },
    )
    fs = Harness(backend, in_graph=True, store=store)
    fs.write("/memories/todo.md", "TODO: remember\n")
    assert [e.path for e in fs.ls("/").entries] == ["/memories/", "/repo/"]
    assert [e.path for e in fs.ls("/repo").entries] == ["/repo/README.md", "/repo/src/"]
    assert [f.path for f in fs.glob("**/*.py", "/").files] == ["/repo/src/app.py"]
    assert [f.path for f in fs.glob("/repo/*.md", "/").files] == ["/repo/README.md"]
    found = [(m.path, m.line) for m in fs.grep("TODO", "/").matches]
    assert found == [("/memories/todo.md", 1), ("/repo/README.md", 1), ("/repo/src/app.py", 2)]
    assert [(m.path) for m in fs.grep("TODO", "/", glob="*.py").matches] == ["/repo/src/app.py"]


def test_our_agent_works_in_a_deepagents_filesystem_route(tmp_path: Path) -> None:
    store = InMemoryStore()
    agent = create_deep_agent(
        model=ScriptedChatModel(
            replies=[
                calls(tool_call("write_file", file_path="/repo/notes.md", content="a\nb\n")),
                calls(
                    tool_call(
                        "edit_file", file_path="/repo/notes.md", old_string="b", new_string="c"
                    )
                ),
                calls(tool_call("grep", pattern="c", path="/repo")),
                calls(tool_call("read_file", file_path="/repo/../etc/passwd")),
                AIMessage("done"),
            ]
        ),
        store=store,
        backend=CompositeBackend(
            default=StateBackend(),
            routes={
                "/memories/": StoreBackend(),
                "/repo/": DeepAgentsBackend(TheirFilesystemBackend(root_dir=tmp_path)),
            },
        ),
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "go"}]},
        {"configurable": {"thread_id": "t1"}},
    )
    said = [m.text for m in result["messages"] if isinstance(m, ToolMessage)]
    assert said[0] == "Wrote '/repo/notes.md'."
    assert said[1] == "Edited '/repo/notes.md': replaced 1 occurrence."
    assert said[2] == "/repo/notes.md"
    assert said[3].startswith("Error") and "passwd" not in str(list(tmp_path.iterdir()))
    assert (tmp_path / "notes.md").read_text() == "a\nc\n"


def test_a_listing_cut_short_by_the_wrapped_backend_says_so() -> None:
    class Budgeted(Recording):
        def glob(self, pattern: str, path: str | None = None) -> TheirGlobResult:
            found = [{"path": "/a.txt", "is_dir": False}]
            return TheirGlobResult(matches=found, truncated=True, truncation_reason="budget")

    fs = Harness(DeepAgentsBackend(Budgeted()))
    error = fs.glob("*.txt").error
    assert error is not None and "stopped listing" in error and "budget" in error
