"""``deepmemory memory history | diff | restore`` on real SQLite files and PostgreSQL.

Changes made by the agent's backend (attributed to its run) and by the command itself
are listed, diffed and restored with the file's path as the agent names it.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from deepmemory.backends import StoreBackend
from deepmemory.cli import history as history_cli
from deepmemory.stores import SQLiteStore
from tests.cli.conftest import deepmemory, invoke, one_error_line
from tests.conftest import postgres_url

USER = "alice"
INSTRUCTIONS = "/memories/instructions.txt"


class Run:
    """The runtime of a tool call in thread ``thread_id`` (what the file tools bind to)."""

    def __init__(self, thread_id):
        self.config = {"configurable": {"thread_id": thread_id, "user_id": USER}}
        self.context = None


def agent_files(store, thread_id=None, user=USER):
    backend = StoreBackend(store=store, namespace=("memories", user)).mounted("/memories")
    return backend.bind(Run(thread_id)) if thread_id else backend


@pytest.fixture
def mem(db):
    """Run ``deepmemory memory ARGS --db DB --user alice``."""

    def run(*args: object):
        return invoke("memory", *args, "--db", db, "--user", USER)

    return run


@pytest.fixture
def edited(db):
    """instructions.txt written in thread t-1 and edited in thread t-2."""
    with SQLiteStore(db) as store:
        agent_files(store, "t-1").write(INSTRUCTIONS, "Instructions:\n- Be concise\n")
        agent_files(store, "t-2").edit(INSTRUCTIONS, "- Be concise\n", "- Be verbose\n")


def test_history_lists_each_change_with_the_thread_that_made_it(mem, edited):
    result = mem("history", "instructions.txt")
    assert result.exit_code == 0, result.stderr
    header, first, second = result.stdout.splitlines()
    assert header.split() == ["REV", "WHEN", "(UTC)", "CHANGE", "SIZE", "BY"]
    assert first.split()[0] == "1" and second.split()[0] == "2"
    assert first.split()[3:] == ["write", "27", "thread", "t-1,", "user", "alice"]
    assert second.split()[3:] == ["edit", "27", "thread", "t-2,", "user", "alice"]


def test_history_as_json_gives_every_field_for_programs(mem, edited):
    revisions = json.loads(mem("history", INSTRUCTIONS, "--json").stdout)
    assert [(r["number"], r["op"], r["thread_id"], r["user"]) for r in revisions] == [
        (1, "write", "t-1", "alice"),
        (2, "edit", "t-2", "alice"),
    ]
    assert set(revisions[0]) == {
        "number",
        "op",
        "created_at",
        "size",
        "thread_id",
        "user",
        "assistant",
    }


def test_diff_shows_what_an_edit_changed_as_a_unified_diff(mem, edited):
    result = mem("diff", INSTRUCTIONS, "1", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "--- /memories/instructions.txt@1\n"
        "+++ /memories/instructions.txt@2\n"
        "@@ -1,2 +1,2 @@\n"
        " Instructions:\n"
        "-- Be concise\n"
        "+- Be verbose\n"
    )
    now = mem("diff", INSTRUCTIONS, "1").stdout
    assert "+++ /memories/instructions.txt (now)" in now and "+- Be verbose" in now


def test_diff_of_a_revision_with_the_file_unchanged_since_prints_nothing(mem, edited):
    result = mem("diff", INSTRUCTIONS, "2")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "No differences.\n")


def test_restore_undoes_an_edit_and_is_itself_a_revision(mem, edited, db):
    result = mem("restore", INSTRUCTIONS, "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "Restored '/memories/instructions.txt' to revision 1 (recorded as revision 3).\n"
    )
    assert mem("cat", INSTRUCTIONS).stdout == "Instructions:\n- Be concise\n"
    revisions = json.loads(mem("history", INSTRUCTIONS, "--json").stdout)
    assert (revisions[-1]["op"], revisions[-1]["user"], revisions[-1]["thread_id"]) == (
        "restore",
        USER,
        None,
    )
    assert mem("restore", INSTRUCTIONS, "2", "--json").stdout.count('"number": 4') == 1


def test_a_file_deleted_with_rm_comes_back_with_restore(mem):
    mem("write", "notes.txt", "remember the milk\n")
    mem("rm", "notes.txt")
    revisions = json.loads(mem("history", "notes.txt", "--json").stdout)
    assert [r["op"] for r in revisions] == ["write", "delete"]
    refused = mem("restore", "notes.txt", "2")
    assert refused.exit_code == 1
    line = one_error_line(refused.stderr)
    assert "deletion" in line and "/memories/notes.txt" in line, line
    assert mem("restore", "notes.txt", "1").exit_code == 0
    assert mem("cat", "notes.txt").stdout == "remember the milk\n"


def test_an_unknown_revision_is_one_error_line_naming_the_revisions_there_are(mem, edited):
    result = mem("diff", INSTRUCTIONS, "7")
    assert result.exit_code == 1
    assert "no revision 7: its revisions are 1, 2" in one_error_line(result.stderr)
    restored = mem("restore", INSTRUCTIONS, "7")
    line = one_error_line(restored.stderr)
    assert restored.exit_code == 1 and "no revision 7" in line, line
    assert INSTRUCTIONS in line, line


def test_a_file_without_history_is_one_error_line_pointing_at_ls(mem):
    result = mem("history", "/memories/projects/nothing.txt")
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "No revisions of '/memories/projects/nothing.txt'" in line
    assert "deepmemory memory ls /memories/projects" in line


@pytest.mark.parametrize("path", ["/memories", "/memories/dir/", "../etc/passwd"])
def test_a_path_that_is_no_file_is_a_usage_error(mem, path):
    result = mem("history", path)
    assert result.exit_code == 2
    one_error_line(result.stderr)


def test_revision_numbers_start_at_1(mem):
    assert mem("diff", INSTRUCTIONS, "0").exit_code == 2


def test_the_history_table_aligns_its_columns():
    from deepmemory.backends.protocol import Revision

    lines = history_cli.history_lines(
        [
            Revision(9, "write", "2026-01-02T03:04:05.000006+00:00", 5),
            Revision(10, "delete", "2026-01-03T03:04:05.000006+00:00", None, None, "bob"),
        ]
    )
    assert lines == [
        "REV  WHEN (UTC)           CHANGE  SIZE  BY",
        "  9  2026-01-02 03:04:05  write      5  -",
        " 10  2026-01-03 03:04:05  delete     -  user bob",
    ]


@pytest.mark.postgres
def test_history_diff_and_restore_work_on_postgresql(home):
    from deepmemory.stores import PostgresStore

    url, user = postgres_url(), f"history-{uuid.uuid4().hex[:12]}"
    try:
        with PostgresStore(connection_string=url) as store:
            agent_files(store, "t-pg", user).write(INSTRUCTIONS, "one\n")
            agent_files(store, "t-pg", user).edit(INSTRUCTIONS, "one", "two")
        args = ("--db", url, "--user", user)
        assert "-one\n+two\n" in invoke("memory", "diff", INSTRUCTIONS, "1", "2", *args).stdout
        assert invoke("memory", "restore", INSTRUCTIONS, "1", *args).exit_code == 0
        revisions = json.loads(invoke("memory", "history", INSTRUCTIONS, "--json", *args).stdout)
        assert [(r["op"], r["thread_id"]) for r in revisions] == [
            ("write", "t-pg"),
            ("edit", "t-pg"),
            ("restore", None),
        ]
        assert invoke("memory", "cat", INSTRUCTIONS, *args).stdout == "one\n"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("items", "revisions", "revision_heads"):
                conn.execute(
                    f"DELETE FROM deepmemory_{table} WHERE namespace = %s", (f"memories.{user}",)
                )


def test_the_installed_command_restores_a_file(home, db):
    with SQLiteStore(db) as store:
        agent_files(store, "t-1").write(INSTRUCTIONS, "v1\n")
        agent_files(store, "t-1").write(INSTRUCTIONS, "v2\n")
    done = deepmemory("memory", "restore", "instructions.txt", "1", "--db", db, "--user", USER)
    assert done.returncode == 0, done.stderr
    shown = deepmemory("memory", "cat", "instructions.txt", "--db", db, "--user", USER)
    assert shown.stdout == "v1\n"
