"""``deepmemory memory ...`` in this process (CliRunner), on a real SQLite file.

Each command does what the agent's tool of the same purpose does, on the same
namespace: files written here are the files the agent reads, and the reverse.
"""

from __future__ import annotations

import json
import sys

import pytest

from deepmemory.backends import StoreBackend
from deepmemory.cli import memory
from deepmemory.stores import SQLiteStore
from tests.cli.conftest import invoke, one_error_line

USER = "alice"


@pytest.fixture
def mem(db):
    """Run ``deepmemory memory ARGS --db DB --user alice``."""

    def run(*args: object, input: str | bytes | None = None):
        return invoke("memory", *args, "--db", db, "--user", USER, input=input)

    return run


@pytest.fixture
def agent_files(db):
    """The files as the agent's StoreBackend reads and writes them."""
    with SQLiteStore(db) as store:
        yield StoreBackend(store=store, namespace=("memories", USER)).mounted("/memories")


def test_write_from_an_argument_is_what_the_agent_reads(mem, agent_files):
    result = mem("write", "/memories/preferences.txt", "Metric units\n")
    assert (result.exit_code, result.stdout) == (0, "Wrote '/memories/preferences.txt'.\n")
    assert agent_files.read("/memories/preferences.txt").lines == ["Metric units"]


@pytest.mark.parametrize("path", ["/memories/notes/a.txt", "/notes/a.txt", "notes/a.txt"])
def test_paths_with_or_without_the_memories_prefix_name_the_same_file(mem, agent_files, path):
    agent_files.write("/memories/notes/a.txt", "hello\n")
    assert mem("cat", path).stdout == "hello\n"


def test_write_reads_stdin_byte_exact_and_cat_gives_the_bytes_back_binary_included(mem):
    data = bytes(range(256)) * 3
    assert mem("write", "/memories/blob.bin", input=data).exit_code == 0
    assert mem("cat", "/memories/blob.bin").stdout_bytes == data


def test_cat_on_a_terminal_numbers_the_lines(mem, agent_files, monkeypatch):
    agent_files.write("/memories/p.txt", "first\nsecond\n")
    monkeypatch.setattr(memory, "is_tty", lambda stream: True)
    lines = mem("cat", "p.txt").stdout.splitlines()
    assert [line.split() for line in lines] == [["1", "first"], ["2", "second"]]


def test_write_opens_the_editor_on_the_current_text_when_stdin_is_a_terminal(
    mem, agent_files, monkeypatch, tmp_path
):
    agent_files.write("/memories/p.txt", "tea\n")
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text() + 'coffee\\n')\n"
    )
    monkeypatch.setattr(memory, "_stdin_is_tty", lambda: True)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    assert mem("write", "p.txt").exit_code == 0
    assert agent_files.read("/memories/p.txt").lines == ["tea", "coffee"]


def test_an_editor_that_changes_nothing_writes_nothing(mem, agent_files, monkeypatch):
    monkeypatch.setattr(memory, "_stdin_is_tty", lambda: True)
    monkeypatch.setenv("EDITOR", "true")
    result = mem("write", "new.txt")
    assert result.exit_code == 0
    assert "nothing was written" in result.stderr
    assert agent_files.ls("/memories").entries == []


def test_write_on_a_terminal_without_an_editor_is_a_usage_error(mem, monkeypatch):
    monkeypatch.setattr(memory, "_stdin_is_tty", lambda: True)
    result = mem("write", "new.txt")
    assert result.exit_code == 2
    assert "EDITOR" in one_error_line(result.stderr)


def test_ls_lists_files_with_sizes_and_directories_and_json_gives_the_entries(mem, agent_files):
    agent_files.write("/memories/a.txt", "12345")
    agent_files.write("/memories/dir/b.txt", "x")
    assert mem("ls").stdout == "/memories/a.txt (5 B)\n/memories/dir/\n"
    entries = json.loads(mem("ls", "--json").stdout)
    assert [(e["path"], e["is_dir"], e["size"]) for e in entries] == [
        ("/memories/a.txt", False, 5),
        ("/memories/dir/", True, None),
    ]
    assert entries[0]["modified_at"]


def test_cat_of_a_missing_file_is_one_line_naming_it_with_exit_code_1(mem):
    result = mem("cat", "/memories/nope.txt")
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert line == (
        "error: '/memories/nope.txt' not found. Use `deepmemory memory ls /memories` to see "
        "what exists."
    )
    assert result.stdout == ""


def test_ls_of_a_missing_directory_fails_with_exit_code_1(mem):
    result = mem("ls", "/memories/nowhere")
    assert result.exit_code == 1
    assert "not found" in one_error_line(result.stderr)


def test_edit_replaces_exactly_one_occurrence_and_asks_for_all_when_there_are_more(
    mem, agent_files
):
    agent_files.write("/memories/p.txt", "tea\ntea\ncoffee\n")
    ambiguous = mem("edit", "p.txt", "tea", "milk")
    assert ambiguous.exit_code == 1
    assert "appears 2 times" in one_error_line(ambiguous.stderr)
    assert "--all" in ambiguous.stderr
    assert mem("edit", "p.txt", "coffee", "cocoa").stdout == (
        "Edited '/memories/p.txt': replaced 1 occurrence.\n"
    )
    assert mem("edit", "p.txt", "tea", "milk", "--all").stdout == (
        "Edited '/memories/p.txt': replaced 2 occurrences.\n"
    )
    assert agent_files.read("/memories/p.txt").lines == ["milk", "milk", "cocoa"]


def test_edit_of_text_that_is_not_there_fails_and_changes_nothing(mem, agent_files):
    agent_files.write("/memories/p.txt", "tea\n")
    result = mem("edit", "p.txt", "coffee", "milk")
    assert result.exit_code == 1
    assert "was not found" in one_error_line(result.stderr)
    assert agent_files.read("/memories/p.txt").lines == ["tea"]


def test_rm_deletes_a_file_but_a_directory_only_with_r(mem, agent_files):
    agent_files.write("/memories/a.txt", "a")
    agent_files.write("/memories/d/b.txt", "b")
    agent_files.write("/memories/d/c.txt", "c")
    assert mem("rm", "a.txt").stdout == "Deleted '/memories/a.txt'.\n"
    refused = mem("rm", "d")
    assert refused.exit_code == 2
    assert "-r" in one_error_line(refused.stderr)
    assert mem("rm", "d", "-r").stdout == "Deleted '/memories/d' and 2 files in it.\n"
    assert agent_files.ls("/memories").entries == []


def test_rm_of_a_missing_file_fails_with_exit_code_1(mem):
    result = mem("rm", "ghost.txt")
    assert result.exit_code == 1
    assert "not found" in one_error_line(result.stderr)


def test_rm_refuses_the_whole_memory(mem, agent_files):
    agent_files.write("/memories/a.txt", "a")
    result = mem("rm", "/memories", "-r")
    assert result.exit_code == 1
    assert "refusing to delete" in one_error_line(result.stderr)


def test_mv_moves_a_file_or_a_directory_and_never_replaces(mem, agent_files):
    agent_files.write("/memories/a.txt", "a")
    agent_files.write("/memories/d/b.txt", "b")
    agent_files.write("/memories/d/c.txt", "c")
    assert mem("mv", "a.txt", "notes/a.txt").stdout == (
        "Moved '/memories/a.txt' to '/memories/notes/a.txt'.\n"
    )
    assert mem("mv", "/memories/d", "archive").stdout == (
        "Moved '/memories/d' to '/memories/archive' with 2 files in it.\n"
    )
    assert agent_files.read("/memories/archive/c.txt").lines == ["c"]
    taken = mem("mv", "notes/a.txt", "archive/b.txt")
    assert taken.exit_code == 1 and "already exists" in one_error_line(taken.stderr)
    missing = mem("mv", "ghost.txt", "x.txt")
    assert missing.exit_code == 1 and "not found" in one_error_line(missing.stderr)
    history = json.loads(mem("history", "archive/b.txt", "--json").stdout)
    assert [r["op"] for r in history] == ["move"]


def test_grep_prints_matching_lines_files_counts_and_json(mem, agent_files):
    agent_files.write("/memories/a.txt", "tea\nmilk tea\n")
    agent_files.write("/memories/b.md", "no match\n")
    agent_files.write("/memories/c.md", "green tea\n")
    assert mem("grep", "tea").stdout == (
        "/memories/a.txt:1: tea\n/memories/a.txt:2: milk tea\n/memories/c.md:1: green tea\n"
    )
    assert mem("grep", "tea", "-l").stdout == "/memories/a.txt\n/memories/c.md\n"
    assert mem("grep", "tea", "-c").stdout == "/memories/a.txt: 2\n/memories/c.md: 1\n"
    assert mem("grep", "tea", "--glob", "*.md").stdout == "/memories/c.md:1: green tea\n"
    assert json.loads(mem("grep", "milk", "--json").stdout) == [
        {"path": "/memories/a.txt", "line": 2, "text": "milk tea"}
    ]
    assert mem("grep", "coffee").stdout == "No matches for 'coffee'.\n"


def test_glob_lists_matching_files_and_json_gives_them_with_sizes(mem, agent_files):
    agent_files.write("/memories/a.md", "a")
    agent_files.write("/memories/x/b.md", "bb")
    agent_files.write("/memories/x/c.txt", "c")
    assert mem("glob", "*.md").stdout == "/memories/a.md (1 B)\n/memories/x/b.md (2 B)\n"
    assert mem("glob", "*", "x").stdout == "/memories/x/b.md (2 B)\n/memories/x/c.txt (1 B)\n"
    found = json.loads(mem("glob", "**/*.txt", "--json").stdout)
    assert [(f["path"], f["size"]) for f in found] == [("/memories/x/c.txt", 1)]


def test_tree_draws_the_hierarchy_directories_first(mem, agent_files):
    for path in ["/memories/z.txt", "/memories/a/b.txt", "/memories/a/c/d.txt"]:
        agent_files.write(path, "x")
    assert mem("tree").stdout.splitlines() == [
        "/memories/",
        "├── a/",
        "│   ├── c/",
        "│   │   └── d.txt",
        "│   └── b.txt",
        "└── z.txt",
    ]
    assert mem("tree", "a/c").stdout.splitlines() == ["/memories/a/c/", "└── d.txt"]


def test_each_user_has_their_own_memory(db, agent_files):
    invoke("memory", "write", "p.txt", "bob's", "--db", db, "--user", "bob")
    assert agent_files.ls("/memories").entries == []
    assert invoke("memory", "cat", "p.txt", "--db", db, "--user", "bob").stdout == "bob's"


def test_the_user_and_database_come_from_the_environment(db, agent_files, monkeypatch):
    monkeypatch.setenv("DEEPMEMORY_DB", str(db))
    monkeypatch.setenv("DEEPMEMORY_USER", USER)
    invoke("memory", "write", "p.txt", "from env")
    assert agent_files.read("/memories/p.txt").lines == ["from env"]


def test_a_user_id_that_could_widen_the_namespace_is_a_usage_error(db):
    result = invoke("memory", "ls", "--db", db, "--user", "a/b")
    assert result.exit_code == 2
    assert "Invalid user 'a/b'" in one_error_line(result.stderr)


def test_an_invalid_path_is_one_line(mem):
    result = mem("cat", "/memories/../etc/passwd")
    assert result.exit_code == 1
    assert "invalid path" in one_error_line(result.stderr)


@pytest.mark.parametrize("path", ["", "/", "/memories", "/memories/"])
def test_the_top_of_memory_is_never_written_as_a_file(mem, agent_files, path):
    result = mem("write", path, "ghost")
    assert result.exit_code == 1 and "is a directory" in one_error_line(result.stderr)
    (upload,) = agent_files.upload_files([("/memories", b"ghost")])
    assert "is a directory" in upload.error
    assert agent_files.read("/memories").error is not None
    assert mem("export", "-").stdout.count("ghost") == 0
