"""StoreBackend over our stores answers exactly as StoreBackend over InMemoryStore."""

from __future__ import annotations

import asyncio
import re

import pytest
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import StoreBackend
from deepmemory.backends.store import iter_namespace_files

SCRIPT = [
    ("write", "/memories/notes.md", "# Notes\r\ntodo: buy milk\r\n"),
    ("write", "/memories/a_b/x.txt", "50% done\nx_y\n"),
    ("write", "/memories/axb/y.txt", "50x done\nxzy\n"),
    ("write", "/memories/deep/er/still/z.md", "todo: deep\n"),
    (
        "upload_files",
        [("/memories/bin.dat", b"\x00\xffneedle"), ("/memories/u/ü.txt", b"na\xc3\xafve needle\n")],
    ),
    ("read", "/memories/notes.md"),
    ("read", "/memories/notes.md", 1, 1),
    ("read", "/memories/bin.dat"),
    ("read", "/memories/missing.txt"),
    ("read", "/memories/deep"),
    ("edit", "/memories/notes.md", "buy milk", "buy oat milk"),
    ("edit", "/memories/notes.md", "not there", "x"),
    ("edit", "/memories/axb/y.txt", "x", "X"),
    ("edit", "/memories/axb/y.txt", "x", "X", {"replace_all": True}),
    ("edit", "/memories/bin.dat", "needle", "pin"),
    ("ls", "/memories"),
    ("ls", "/memories/a_b"),
    ("ls", "/memories/deep"),
    ("ls", "/memories/notes.md"),
    ("ls", "/memories/nowhere"),
    ("glob", "**/*.txt", "/"),
    ("glob", "*.md", "/memories"),
    ("glob", "/memories/a_b/*", None),
    ("glob", "memories/{a_b,axb}/*.txt", "/"),
    ("glob", "deep/**", "/memories"),
    ("glob", "a%b/*", "/memories"),
    ("grep", "needle", None, None),
    ("grep", "50%", "/memories", None),
    ("grep", "x_y", "/", "*.txt"),
    ("grep", "todo", "/memories/notes.md", None),
    ("grep", "todo", "/memories", "**/*.md"),
    ("grep", "X", "/memories/axb", None),
    ("download_files", ["/memories/bin.dat", "/memories/u/ü.txt", "/memories/nope"]),
    ("delete", "/memories/a_b"),
    ("delete", "/memories/nope"),
    ("delete", "/memories/deep/er"),
    ("ls", "/memories"),
    ("glob", "**", "/memories"),
]


def _shown(result):
    # Timestamps differ between two runs; everything else must be identical.
    return re.sub(r"modified_at='[^']*'", "modified_at=...", repr(result))


def _run(backend, mode):
    answers = []
    for name, *args in SCRIPT:
        kwargs = args.pop() if isinstance(args[-1], dict) else {}
        if mode == "sync":
            answers.append(_shown(getattr(backend, name)(*args, **kwargs)))
        else:
            answers.append(_shown(asyncio.run(getattr(backend, "a" + name)(*args, **kwargs))))
    return answers


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_file_tools_give_the_same_answers_as_with_the_in_memory_store(store, mode):
    namespace = ("users", "alice")
    ours = StoreBackend(store=store, namespace=namespace).mounted("/memories")
    reference = StoreBackend(store=InMemoryStore(), namespace=namespace).mounted("/memories")
    expected = _run(reference, "sync")
    for step, (got, want) in enumerate(zip(_run(ours, mode), expected, strict=True)):
        assert got == want, SCRIPT[step]


def test_files_written_through_the_backend_are_plain_items_for_langgraph(store):
    backend = StoreBackend(store=store, namespace=("users", "alice"))
    backend.write("/prefs.txt", "dark mode")
    backend.upload_files([("/photo.bin", b"\xff\xd8")])
    items = {item.key: item.value for item in store.search(("users", "alice"))}
    assert set(items) == {"/prefs.txt", "/photo.bin"}
    assert items["/prefs.txt"]["content"] == "dark mode"
    assert items["/photo.bin"]["encoding"] == "base64"
    assert set(items["/prefs.txt"]) == {"content", "encoding", "created_at", "modified_at"}
    exported = dict(iter_namespace_files(store, ("users", "alice")))
    assert exported["/prefs.txt"].content == "dark mode" and set(exported) == set(items)


def test_writing_a_file_over_a_directory_is_refused_because_the_check_is_an_index_lookup(store):
    backend = StoreBackend(store=store).mounted("/memories")
    backend.write("/memories/deep/x.txt", "x")
    assert "is a directory" in backend.write("/memories/deep", "y").error
