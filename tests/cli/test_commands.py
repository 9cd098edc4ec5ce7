"""Conventions every command keeps: -h with an example, settings from the environment
and the config file, one-line errors with meaningful exit codes, JSON for programs."""

from __future__ import annotations

import json

import pytest
import typer

from deepmemory.cli import app
from deepmemory.cli._config import default_user
from deepmemory.cli._reference import command_paths
from deepmemory.cli._store import memory_path, shown_db
from tests.cli.conftest import ASK, SAVE, SAVED, invoke, one_error_line

COMMANDS = [p for p in command_paths() if p]
SHARED = ("user", "db", "model", "base_url", "thread")


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "deepmemory")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help_with_an_example(path, flag):
    result = invoke(*path, flag)
    assert result.exit_code == 0
    assert "Usage: deepmemory" in result.stdout
    assert "Example:" in result.stdout


def test_every_option_of_the_shared_settings_can_come_from_an_environment_variable():
    command = typer.main.get_command(app)
    envvars = {}
    for path in COMMANDS:
        node = command
        for name in path:
            node = node.commands[name]
        for param in node.params:
            if param.name in (*SHARED, "ttl_days", "max_files", "max_bytes"):
                envvars.setdefault(param.name, set()).add(param.envvar)
    assert envvars["db"] == {"DEEPMEMORY_DB"}
    assert envvars["ttl_days"] == {"DEEPMEMORY_TTL_DAYS"}
    assert envvars["max_files"] == {"DEEPMEMORY_MAX_FILES"}
    assert envvars["max_bytes"] == {"DEEPMEMORY_MAX_BYTES"}
    assert envvars["model"] == {"DEEPMEMORY_MODEL"}
    assert envvars["base_url"] == {"DEEPMEMORY_BASE_URL"}
    assert envvars["thread"] == {"DEEPMEMORY_THREAD"}
    # export/import default to every user, so they do not read DEEPMEMORY_USER.
    assert envvars["user"] == {"DEEPMEMORY_USER", None}


def test_an_unknown_option_is_a_usage_error_with_exit_code_2(db):
    assert invoke("memory", "ls", "--colour").exit_code == 2


def test_no_model_configured_is_one_line_naming_deepmemory_model_with_exit_code_2(home, db):
    result = invoke("run", "hello", "--db", db)
    assert result.exit_code == 2
    assert "DEEPMEMORY_MODEL" in one_error_line(result.stderr)
    chat = invoke("chat", "--db", db)
    assert chat.exit_code == 2
    assert "DEEPMEMORY_MODEL" in one_error_line(chat.stderr)


def test_the_model_and_base_url_come_from_the_config_file(home, db, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    config = home / ".config" / "deepmemory" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'model = "openai:gpt-4.1-mini"\nbase_url = "{server.base_url}"\n')
    result = invoke("run", SAVE, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["reply"] == SAVED
    assert {r.body["model"] for r in server.chat_requests} == {"gpt-4.1-mini"}


def test_an_option_wins_over_its_variable_and_the_config_file(home, db, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("DEEPMEMORY_MODEL", "openai:from-env")
    monkeypatch.setenv("DEEPMEMORY_BASE_URL", server.base_url)
    config = home / ".config" / "deepmemory" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('model = "openai:from-config"\n')
    invoke("run", "hi", "--db", db)
    invoke("run", "hi", "--db", db, "--model", "openai:from-option")
    assert [r.body["model"] for r in server.chat_requests] == ["from-env", "from-option"]


def test_a_config_file_with_an_unknown_setting_is_one_line_with_exit_code_2(home, db):
    config = home / ".config" / "deepmemory" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('modle = "openai:gpt-4.1"\n')
    result = invoke("memory", "ls", "--db", db)
    assert result.exit_code == 2
    assert "Unknown setting 'modle'" in one_error_line(result.stderr)


def test_a_config_file_that_is_not_toml_is_one_line_with_exit_code_2(home, db, monkeypatch):
    config = home / "elsewhere.toml"
    config.write_text("model = \n")
    monkeypatch.setenv("DEEPMEMORY_CONFIG", str(config))
    result = invoke("memory", "ls", "--db", db)
    assert result.exit_code == 2
    assert "Cannot read the config file" in one_error_line(result.stderr)


def test_the_database_defaults_to_the_users_data_directory(home, monkeypatch):
    monkeypatch.setenv("DEEPMEMORY_USER", "alice")
    assert invoke("memory", "write", "p.txt", "x").exit_code == 0
    assert (home / ".local" / "share" / "deepmemory" / "memory.db").is_file()


def test_the_default_user_is_the_os_user_made_safe_for_a_namespace(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "john.doe")
    assert default_user() == "john_doe"


@pytest.mark.parametrize(
    ("given", "path"),
    [
        ("/memories/a.txt", "/memories/a.txt"),
        ("/a.txt", "/memories/a.txt"),
        ("a.txt", "/memories/a.txt"),
        ("/", "/memories"),
        ("/memories/", "/memories"),
        ("/memoriesx", "/memories/memoriesx"),
    ],
)
def test_memory_paths_are_taken_with_or_without_the_memories_prefix(given, path):
    assert memory_path(given) == path


def test_a_postgresql_url_is_shown_without_its_password():
    assert (
        shown_db("postgresql://u:pw@db.example:5433/app")
        == "postgresql://u:***@db.example:5433/app"
    )
    assert shown_db("/tmp/memory.db") == "/tmp/memory.db"


def test_an_unexpected_error_is_one_line_and_its_traceback_shows_with_deepmemory_debug(
    db, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("deepmemory.cli.memory.memory_backend", broken)
    result = invoke("memory", "ls", "--db", db)
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == (
        "error: Unexpected RuntimeError: boom (DEEPMEMORY_DEBUG=1 shows where)"
    )
    monkeypatch.setenv("DEEPMEMORY_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        invoke("memory", "ls", "--db", db)


# -- threads ---------------------------------------------------------------------------


def test_threads_ls_show_and_rm_read_the_conversations_kept_in_the_database(model_env, db):
    first = json.loads(invoke("run", SAVE, "--db", db, "--user", "alice", "--json").stdout)
    second = json.loads(invoke("run", ASK, "--db", db, "--json").stdout)

    listed = json.loads(invoke("threads", "ls", "--db", db, "--json").stdout)
    assert [t["thread_id"] for t in listed] == [second["thread_id"], first["thread_id"]]
    assert listed[1]["user"] == "alice"
    assert listed[1]["messages"] == 4 and listed[1]["first_message"] == SAVE
    plain = invoke("threads", "ls", "--db", db).stdout.splitlines()
    assert [line.split("\t")[0] for line in plain] == [second["thread_id"], first["thread_id"]]

    shown = invoke("threads", "show", first["thread_id"], "--db", db).stdout.splitlines()
    assert shown == [
        f"you> {SAVE}",
        "  → write_file /memories/preferences.txt",
        "    ← Wrote '/memories/preferences.txt'.",
        SAVED,
    ]
    record = json.loads(invoke("threads", "show", first["thread_id"], "--db", db, "--json").stdout)
    assert [m["role"] for m in record["messages"]] == ["you", "assistant", "tool", "assistant"]
    assert record["messages"][1]["tool_calls"][0]["name"] == "write_file"
    last = invoke("threads", "show", first["thread_id"], "--db", db, "--last", "1").stdout
    assert last == SAVED + "\n"

    assert invoke("threads", "rm", first["thread_id"], "--db", db).exit_code == 0
    remaining = json.loads(invoke("threads", "ls", "--db", db, "--json").stdout)
    assert [t["thread_id"] for t in remaining] == [second["thread_id"]]
    assert invoke("memory", "ls", "--db", db, "--user", "alice").stdout.startswith(
        "/memories/preferences.txt"
    )  # deleting a conversation keeps the memories


def test_threads_ls_of_an_empty_database_says_how_to_start(db):
    assert invoke("threads", "ls", "--db", db).stdout.startswith("No conversations yet")
    assert json.loads(invoke("threads", "ls", "--db", db, "--json").stdout) == []


def test_showing_an_unknown_thread_is_one_line_with_exit_code_1(db):
    result = invoke("threads", "show", "nope", "--db", db)
    assert result.exit_code == 1
    assert "threads ls" in one_error_line(result.stderr)


def test_threads_are_found_by_a_unique_prefix_and_a_new_one_is_said_to_be_new(model_env, db):
    first = json.loads(invoke("run", SAVE, "--db", db, "--user", "alice", "--json").stdout)
    full = first["thread_id"]
    prefix = full[:8]
    shown = invoke("threads", "show", prefix, "--db", db)
    assert shown.exit_code == 0 and shown.stdout.startswith(f"you> {SAVE}")
    again = invoke("run", ASK, "--db", db, "--user", "alice", "--thread", prefix, "--json")
    assert json.loads(again.stdout)["thread_id"] == full  # continued, not a new thread
    assert "New thread" not in again.stderr
    fresh = invoke("run", ASK, "--db", db, "--thread", "my-own-name", "--json")
    assert "New thread my-own-name" in fresh.stderr
    assert json.loads(fresh.stdout)["thread_id"] == "my-own-name"

    mine = json.loads(invoke("threads", "ls", "--db", db, "--user", "alice", "--json").stdout)
    assert [t["thread_id"] for t in mine] == [full]

    assert invoke("threads", "rm", prefix, "--db", db).stdout == f"Deleted thread {full}.\n"


def test_a_prefix_of_several_threads_is_one_line_asking_for_more(model_env, db):
    for name in ("team-a", "team-b"):
        invoke("run", ASK, "--db", db, "--thread", name, "--json")
    result = invoke("threads", "show", "team-", "--db", db)
    assert result.exit_code == 1
    assert "2 threads start with 'team-'" in one_error_line(result.stderr)
