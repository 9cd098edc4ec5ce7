"""Run backend operations the way an agent would: sync or async, inside a graph if needed.

``Harness`` wraps a backend for the conformance suite. Backends that keep files in
thread state only work inside a graph run, so for them every operation runs as one
step of a real LangGraph graph with a ``files`` channel (``merge_files`` reducer) and
a checkpointer: the backend is bound to that step's state and its ``files_update`` is
applied by the reducer, exactly as the file tools do it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Annotated, Any, Literal, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

from deepmemory.backends.state import merge_files

Mode = Literal["sync", "async"]


class _FilesState(TypedDict, total=False):
    files: Annotated[dict[str, Any], merge_files]


def _updates(result: Any) -> dict[str, Any]:
    items = result if isinstance(result, list) else [result]
    update: dict[str, Any] = {}
    for item in items:
        update.update(getattr(item, "files_update", None) or {})
    return update


class Harness:
    """Calls ``ls``, ``read``... on a backend in ``mode``; ``in_graph`` for thread state.

    Example:
        >>> from deepmemory.backends import StateBackend
        >>> fs = Harness(StateBackend(), mode="sync", in_graph=True)
        >>> fs.write("/a.txt", "x").error is None
        True
    """

    _threads = itertools.count()

    def __init__(
        self,
        backend: Any,
        *,
        mode: Mode = "sync",
        in_graph: bool = False,
        store: BaseStore | None = None,
        root: str = "",
        caps: frozenset[str] = frozenset({"dir-write-check"}),
    ) -> None:
        self.backend = backend
        self.caps = caps
        self.mode = mode
        self.root = root
        self.store = store
        self._op: Callable[[Any], Any] | None = None
        self._result: Any = None
        self.graph = self._graph() if in_graph else None
        self.config = {"configurable": {"thread_id": f"conformance-{next(self._threads)}"}}

    def p(self, path: str) -> str:
        """A path inside the area under test (``root`` + ``path``)."""
        return self.root + path

    def _runtime(self, state: Any) -> SimpleNamespace:
        return SimpleNamespace(state=state, store=self.store, context=None, config={})

    def _graph(self) -> Any:
        def step(state: _FilesState) -> dict[str, Any]:
            assert self._op is not None
            self._result = self._op(self.backend.bind(self._runtime(state)))
            return {"files": _updates(self._result)}

        async def astep(state: _FilesState) -> dict[str, Any]:
            assert self._op is not None
            self._result = await self._op(self.backend.bind(self._runtime(state)))
            return {"files": _updates(self._result)}

        graph: StateGraph[_FilesState] = StateGraph(_FilesState)
        graph.add_node("step", step if self.mode == "sync" else astep)
        graph.add_edge(START, "step")
        graph.add_edge("step", END)
        return graph.compile(checkpointer=InMemorySaver())

    def run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run one backend method (``a`` + name in async mode)."""
        method = name if self.mode == "sync" else "a" + name

        def op(backend: Any) -> Any:
            return getattr(backend, method)(*args, **kwargs)

        if self.graph is None:
            bound = self.backend.bind(self._runtime({}))
            if self.mode == "sync":
                return op(bound)
            return asyncio.run(op(bound))
        self._op = op
        if self.mode == "sync":
            self.graph.invoke({}, self.config)
        else:
            asyncio.run(self.graph.ainvoke({}, self.config))
        return self._result

    def files_in_state(self) -> dict[str, Any]:
        """The ``files`` channel as checkpointed (thread-state backends only)."""
        assert self.graph is not None
        return dict(self.graph.get_state(self.config).values.get("files") or {})

    def ls(self, path: str = "/") -> Any:
        """``ls``."""
        return self.run("ls", path)

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> Any:
        """``read``."""
        return self.run("read", file_path, offset, limit)

    def write(self, file_path: str, content: str) -> Any:
        """``write``."""
        return self.run("write", file_path, content)

    def edit(self, file_path: str, old: str, new: str, *, replace_all: bool = False) -> Any:
        """``edit``."""
        return self.run("edit", file_path, old, new, replace_all=replace_all)

    def delete(self, path: str) -> Any:
        """``delete``."""
        return self.run("delete", path)

    def move(self, old_path: str, new_path: str) -> Any:
        """``move``."""
        return self.run("move", old_path, new_path)

    def glob(self, pattern: str, path: str | None = None) -> Any:
        """``glob``."""
        return self.run("glob", pattern, path)

    def grep(self, pattern: str, path: str | None = None, glob: str | None = None) -> Any:
        """``grep``."""
        return self.run("grep", pattern, path, glob)

    def upload_files(self, files: list[tuple[str, bytes]]) -> Any:
        """``upload_files``."""
        return self.run("upload_files", files)

    def download_files(self, paths: list[str]) -> Any:
        """``download_files``."""
        return self.run("download_files", paths)
