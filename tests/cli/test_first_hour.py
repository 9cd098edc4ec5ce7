"""The first hour: mistakes create nothing, content is taken as typed (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import deepmemory, invoke, one_error_line
from tests.conftest import closed_port


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "url",
    [
        "mysql://foo/bar",
        "sqlite:///tmp/m.db",
        "redis://localhost",
        "postgresql+psycopg://u:secret@h/db",
        "POSTGRESQL://u:secret@h/db",
    ],
)
def test_a_database_url_of_another_kind_is_refused_and_creates_nothing(home, url, monkeypatch):
    monkeypatch.chdir(home)
    before = everything_under(home)
    result = invoke("memory", "ls", "--db", url)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "not supported" in line and "postgresql://" in line and "memory.db" in line
    assert "secret" not in line
    assert everything_under(home) == before


@pytest.mark.parametrize(
    "command",
    [
        ("memory", "ls"),
        ("memory", "tree"),
        ("memory", "grep", "x"),
        ("memory", "glob", "*"),
        ("memory", "export", "-"),
        ("threads", "ls"),
    ],
)
def test_a_command_that_reads_a_missing_database_says_so_and_creates_nothing(home, command):
    db = home / "no" / "such" / "dir" / "m.db"
    result = invoke(*command, "--db", db)
    assert result.exit_code == 0, result.stderr
    assert "No memory yet" in result.stderr and str(db) in result.stderr
    assert not (home / "no").exists()


def test_a_read_that_fails_on_a_missing_database_is_one_line_and_creates_nothing(home):
    db = home / "nowhere" / "m.db"
    result = invoke("memory", "cat", "notes.txt", "--db", db)
    assert result.exit_code == 1
    assert "not found" in one_error_line(result.stderr)
    assert not (home / "nowhere").exists()


def test_a_write_creates_the_database_and_its_folders_and_says_where(home):
    db = home / "new" / "place" / "m.db"
    result = invoke("memory", "write", "p.txt", "hello", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert f"Created {db}" in result.stderr
    assert invoke("memory", "cat", "p.txt", "--db", db).stdout == "hello"
    again = invoke("memory", "write", "q.txt", "more", "--db", db)
    assert "Created" not in again.stderr


def test_a_command_that_fails_leaves_no_new_database_behind(home, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("DEEPMEMORY_MODEL", "openai:gpt-4.1")
    monkeypatch.setenv("OPENAI_API_KEY", "key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    db = home / "fresh" / "m.db"
    result = deepmemory("run", "hello", "--db", db)
    assert result.returncode == 1
    assert "Cannot reach the model server" in one_error_line(result.stderr)
    assert not (home / "fresh").exists()


DASHED = [
    "- Concise answers",
    "-x",
    "--not-an-option",
    "-",
    "- show the schema",  # holds an 'h': was read as -h, printed the help, wrote nothing
    "- use metric units",  # holds a 'u': the rest was taken as the --user option
    "-x h",
    "-1",
    "--db",  # an option's name is text after --
]


@pytest.mark.parametrize("content", DASHED)
def test_content_that_starts_with_a_dash_is_written_as_typed(home, content):
    db = home / "m.db"
    separator = ["--"] if content == "--db" else []
    result = invoke("memory", "write", "--db", db, "p.txt", *separator, content)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout == "Wrote '/memories/p.txt'.\n"
    assert invoke("memory", "cat", "p.txt", "--db", db).stdout == content


def test_options_are_options_wherever_they_stand_and_text_keeps_its_order(home, monkeypatch):
    monkeypatch.chdir(home)
    db, user = home / "m.db", "alice"
    wrote = invoke("memory", "write", "-u", user, "p.txt", "- hold the line", f"--db={db}")
    assert wrote.exit_code == 0, wrote.stderr
    edited = invoke("memory", "edit", "p.txt", "- hold", "- hush, hold", "--user", user, "--db", db)
    assert edited.exit_code == 0, edited.stderr
    assert (
        invoke("memory", "cat", "p.txt", "--db", db, "-u", user).stdout == "- hush, hold the line"
    )
    found = invoke("memory", "grep", "- hush", "-lc", "--db", db, "-u", user)
    assert found.exit_code == 0, found.stderr
    assert "/memories/p.txt" in found.stdout
    invoke("memory", "write", "q.md", "- hush", "--db", db, "-u", user)
    only_md = invoke("memory", "grep", "- hush", "-g", "*.md", "-l", "--db", db, "-u", user)
    assert only_md.stdout.split() == ["/memories/q.md"], only_md.stdout + only_md.stderr
    before = everything_under(home)
    missing_value = invoke("memory", "write", "p.txt", "x", "--db")
    assert missing_value.exit_code == 2
    assert "Option '--db' requires an argument" in missing_value.stderr
    assert everything_under(home) == before  # not a database named "--"
    help_asked = invoke("memory", "write", "p.txt", "-h")
    assert help_asked.exit_code == 0 and "Usage" in help_asked.stdout


def test_a_value_stuck_to_an_option_is_text_and_never_a_path(home):
    """``-urgent`` is text, not user "rgent"; where it would be a PATH (``grep hello
    -g*.md``) the command says how to write it instead of looking in a folder of that
    name."""
    db = home / "m.db"
    wrote = invoke("memory", "write", "todo.md", "-urgent", "--db", db, "-u", "alice")
    assert wrote.exit_code == 0, wrote.stderr
    assert invoke("memory", "cat", "todo.md", "--db", db, "-u", "alice").stdout == "-urgent"
    for args in (("grep", "hello", "-g*.md"), ("write", "-ualice", "p.txt"), ("ls", "-x")):
        result = deepmemory("memory", *args, "--db", db)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        line = one_error_line(result.stderr)
        if args[0] != "ls":  # (ls keeps click's parsing: "No such option")
            assert "is not a path" in line and "/memories/" in line, line
    assert invoke("memory", "ls", "--db", db, "-u", "alice").stdout == "/memories/todo.md (7 B)\n"


def test_a_prompt_that_starts_with_a_dash_reaches_the_model_as_typed(model_env, db):
    result = deepmemory("run", "- show units, -h", "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello! - show units, -h\n"


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"deepmemory {version('deepmemory')}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("memory", "ls", "--bogus"), "No such option: --bogus"),
        (("nosuchcmd",), "No such command 'nosuchcmd'"),
        (("memory", "cat"), "Missing argument 'path'"),
        (("memory", "ls", "--limit", "x"), "No such option: --limit"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(home, args, says):
    result = deepmemory(*args)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert says in line and line.endswith("-h`.") and "╭" not in result.stderr


LOADED = """
import json, sys
from deepmemory.cli import main
sys.argv = ["deepmemory", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print("\\nLOADED " + json.dumps(sorted(sys.modules)))
"""
AGENT_STACK = ("langchain", "langchain.agents", "deepmemory.agent", "openai", "psycopg")


def modules_loaded_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )
    last = done.stdout.rstrip().rsplit("\n", 1)[-1]
    assert last.startswith("LOADED "), (done.stdout, done.stderr)
    return set(json.loads(last.removeprefix("LOADED ")))


@pytest.mark.parametrize(
    "args",
    [("--help",), ("--version",), ("memory", "ls"), ("memory", "cat", "p.txt"), ("threads", "ls")],
)
def test_commands_that_run_no_agent_do_not_import_the_agent_stack(home, db, monkeypatch, args):
    """Start-up cost (bench/bench_startup.py measures it): LangChain's agents take ~1.8 s."""
    monkeypatch.setenv("DEEPMEMORY_DB", str(db))
    assert invoke("memory", "write", "p.txt", "tea\n").exit_code == 0
    loaded = modules_loaded_by(*args)
    assert "deepmemory.cli" in loaded
    assert not loaded & set(AGENT_STACK), sorted(loaded & set(AGENT_STACK))
    if args[0].startswith("--"):  # not even LangChain's core or LangGraph
        assert not {m for m in loaded if m.startswith(("langchain", "langgraph"))}


def test_chat_imports_the_agent_stack_when_it_runs_a_turn(model_env, db):
    loaded = modules_loaded_by("run", "Hi", "--db", str(db))
    assert {"langchain.agents", "deepmemory.agent"} <= loaded
