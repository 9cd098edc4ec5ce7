"""The installed ``deepmemory`` command, in new processes, against a model over real HTTP.

Each step is a separate process, so what one run saved can only reach the next
through the SQLite file: memories in the store, conversations in its checkpointer.
"""

from __future__ import annotations

import json
import re

from tests.cli.conftest import (
    ASK,
    PREFERENCE,
    RECALL,
    SAVE,
    SAVED,
    deepmemory,
    one_error_line,
)
from tests.conftest import closed_port
from tests.fakes.openai_server import text_of

WRITE_CALL = {
    "name": "write_file",
    "args": {"file_path": "/memories/preferences.txt", "content": PREFERENCE},
}


def run_json(*args: object) -> dict:
    result = deepmemory("run", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_preference_saved_in_one_process_is_answered_by_a_new_process_on_a_new_thread(
    model_env, db
):
    saved = run_json(SAVE, "--db", db)
    assert saved["reply"] == SAVED
    assert saved["tool_calls"] == [WRITE_CALL]

    answer = run_json(ASK, "--db", db)
    assert answer["thread_id"] != saved["thread_id"]
    assert answer["reply"] == RECALL + "     1\tPrefers metric units"
    assert answer["tool_calls"] == [
        {"name": "read_file", "args": {"file_path": "/memories/preferences.txt"}}
    ]
    save, after_write, ask, after_read = model_env.chat_requests
    assert [m["role"] for m in ask.messages] == ["system", "user"]  # nothing of thread 1
    assert after_read.messages[-1]["role"] == "tool"
    assert "Prefers metric units" in after_read.messages[-1]["content"]
    assert all(r.stream for r in model_env.chat_requests)  # replies were streamed
    assert {r.body["model"] for r in model_env.chat_requests} == {"gpt-4.1"}


def test_memory_cat_shows_what_the_agent_saved_and_an_edit_reaches_the_agents_next_run(
    model_env, db
):
    run_json(SAVE, "--db", db)
    cat = deepmemory("memory", "cat", "/memories/preferences.txt", "--db", db)
    assert (cat.returncode, cat.stdout) == (0, PREFERENCE)

    edit = deepmemory(
        "memory", "edit", "/memories/preferences.txt", "metric", "imperial", "--db", db
    )
    assert edit.returncode == 0, edit.stderr
    assert edit.stdout == "Edited '/memories/preferences.txt': replaced 1 occurrence.\n"

    answer = run_json(ASK, "--db", db)
    tool_result = model_env.chat_requests[-1].messages[-1]
    assert tool_result["role"] == "tool"
    assert "Prefers imperial units" in tool_result["content"]
    assert "metric" not in tool_result["content"]
    assert answer["reply"] == RECALL + "     1\tPrefers imperial units"


def test_run_streams_the_reply_to_stdout_and_tool_calls_and_the_new_thread_to_stderr(model_env, db):
    result = deepmemory("run", SAVE, "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SAVED + "\n"
    assert re.search(r"^thread [0-9a-f-]{36} ", result.stderr, re.MULTILINE)
    assert "  → write_file /memories/preferences.txt" in result.stderr.splitlines()


def test_run_with_a_thread_id_continues_that_conversation_in_a_new_process(model_env, db):
    first = run_json(SAVE, "--db", db)
    later = run_json("How are you?", "--db", db, "--thread", first["thread_id"])
    assert later["thread_id"] == first["thread_id"]
    assert later["reply"] == "Hello! How are you?"
    sent = model_env.chat_requests[-1].messages
    assert [text_of(m) for m in sent if m["role"] == "user"] == [SAVE, "How are you?"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]


def test_run_reads_the_prompt_from_stdin_when_it_is_a_dash(model_env, db):
    result = deepmemory("run", "-", "--db", db, "--json", input=SAVE)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reply"] == SAVED


def test_memory_is_kept_per_user(model_env, db):
    run_json(SAVE, "--db", db, "--user", "alice")
    bob = deepmemory("memory", "ls", "--db", db, "--user", "bob")
    alice = deepmemory("memory", "ls", "--db", db, "--user", "alice")
    assert bob.stdout == "'/memories' is empty.\n"
    assert alice.stdout == "/memories/preferences.txt (21 B)\n"


def test_threads_ls_in_a_new_process_lists_the_conversation_with_its_user(model_env, db):
    saved = run_json(SAVE, "--db", db, "--user", "alice")
    listed = deepmemory("threads", "ls", "--db", db, "--json")
    assert listed.returncode == 0, listed.stderr
    (thread,) = json.loads(listed.stdout)
    assert thread["thread_id"] == saved["thread_id"]
    assert thread["user"] == "alice"
    assert thread["messages"] == 4
    assert thread["first_message"] == SAVE
    assert thread["last_message"] == SAVED


# -- what goes wrong, in one line -----------------------------------------------------


def test_no_model_configured_is_one_line_naming_deepmemory_model_with_exit_code_2(home, db):
    result = deepmemory("run", "hello", "--db", db)
    assert result.returncode == 2
    assert "DEEPMEMORY_MODEL" in one_error_line(result.stderr)
    assert result.stdout == ""


def test_a_missing_api_key_is_one_line_naming_the_variable_with_exit_code_2(home, db, monkeypatch):
    monkeypatch.setenv("DEEPMEMORY_MODEL", "openai:gpt-4.1")
    result = deepmemory("run", "hello", "--db", db)
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in one_error_line(result.stderr)


def test_a_rejected_api_key_is_one_line_with_exit_code_1(model_env, db, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    result = deepmemory("run", "hello", "--db", db)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "rejected the API key" in line and "Incorrect API key provided" in line


def test_an_unreachable_model_server_is_one_line_with_exit_code_1(home, db, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("DEEPMEMORY_MODEL", "openai:gpt-4.1")
    monkeypatch.setenv("OPENAI_API_KEY", "key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    result = deepmemory("run", "hello", "--db", db)
    assert result.returncode == 1
    assert "Cannot reach the model server" in one_error_line(result.stderr)


def test_an_unreachable_postgresql_database_is_one_line_with_exit_code_1(home):
    port = closed_port()
    result = deepmemory("memory", "ls", "--db", f"postgresql://postgres:secret@127.0.0.1:{port}/x")
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "PostgreSQL" in line
    assert "secret" not in line
