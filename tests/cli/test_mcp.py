"""``deepmemory mcp``: the user's memory served to MCP clients, proven end to end.

Every server here is the installed command in a new process on a real SQLite file
(one test: the PostgreSQL server of ``DEEPMEMORY_TEST_POSTGRES_URL``), driven by
the official SDK's ``ClientSession`` over its stdio client or its streamable HTTP
client on loopback. What a tool returns is compared with what the agent's own file
tools (``build_file_tools`` over ``agent_backend``) return for the same calls.
"""

from __future__ import annotations

import base64
import json
import shlex
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore
from mcp import Client, MCPError

from deepmemory import errors, integrations
from deepmemory.backends import StateBackend, StoreBackend
from deepmemory.integrations.mcp import MemoryServer
from deepmemory.middleware.filesystem import (
    FILESYSTEM_PROMPT,
    MAP_UNAVAILABLE,
    MEMORY_PROMPT,
    build_file_tools,
)
from tests.cli.conftest import deepmemory, invoke, one_error_line
from tests.cli.mcp_helpers import (
    Failing,
    agent_texts,
    call,
    http_server,
    http_session,
    ok,
    post_initialize,
    run,
    stdio_session,
    text,
)
from tests.conftest import postgres_url

TOOLS = ["ls", "read_file", "write_file", "edit_file", "delete", "glob", "grep"]
ALICE_TOKEN = "alice-" + "a1" * 16
BOB_TOKEN = "bob-" + "b2" * 16
GUIDELINES = FILESYSTEM_PROMPT + MEMORY_PROMPT.format(
    routes="/memories/", first="/memories/", scratch=""
)

# One session's calls, each compared with the agent's tool on the same calls.
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("ls", {}),
    ("write_file", {"file_path": "/memories/notes.md", "content": "Project notes\nmetric units\n"}),
    ("write_file", {"file_path": "/memories/people/bob.md", "content": "Bob\nlikes metric tea\n"}),
    ("edit_file", {"file_path": "/memories/notes.md", "old_string": "metric", "new_string": "SI"}),
    ("edit_file", {"file_path": "/memories/notes.md", "old_string": "absent", "new_string": "x"}),
    ("grep", {"pattern": "metric"}),
    ("grep", {"pattern": "SI", "output_mode": "content"}),
    ("grep", {"pattern": "e", "path": "/memories/people", "output_mode": "count"}),
    ("glob", {"pattern": "**/*.md"}),
    ("read_file", {"file_path": "/memories/notes.md"}),
    ("read_file", {"file_path": "/memories/notes.md", "offset": 1, "limit": 1}),
    ("read_file", {"file_path": "/memories/missing.md"}),
    ("ls", {"path": "/memories"}),
    ("ls", {}),
    ("delete", {"file_path": "/memories/people"}),
    ("ls", {"path": "/memories/"}),
]


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The private HOME of ``home``, without the MCP command's own variables."""
    for name in ("DEEPMEMORY_MCP_HTTP", "DEEPMEMORY_MCP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


# -- 1. stdio: the tools are the file tools ---------------------------------------------


def test_over_stdio_the_tools_are_the_agents_file_tools_and_say_exactly_what_they_say(
    env, db, tmp_path
):
    agent_tools = {t.name: t for t in build_file_tools(StateBackend())}

    async def main() -> tuple[list[Any], list[tuple[str, bool]]]:
        async with stdio_session("--db", db, "--user", "alice") as session:
            tools = (await session.list_tools()).tools
            return tools, [await call(session, name, **args) for name, args in SCRIPT]

    tools, answers = run(main)
    assert [t.name for t in tools] == TOOLS
    for tool in tools:
        mine = agent_tools[tool.name]
        assert tool.description == mine.description
        schema = mine.tool_call_schema.model_json_schema()
        assert tool.input_schema["properties"] == schema["properties"]
        assert tool.input_schema.get("required", []) == schema.get("required", [])

    expected = agent_texts(tmp_path / "agent.db", "alice", SCRIPT)
    assert [answer for answer, _ in answers] == expected
    assert [failed for _, failed in answers] == [t.startswith("Error:") for t in expected]
    assert sum(failed for _, failed in answers) == 2  # the edit of absent text, the missing file
    assert answers[9][0] == "     1\tProject notes\n     2\tSI units"
    assert answers[0][0] == answers[13][0] == "/memories/"  # ls() shows where memory lives


# -- 2, 3. one database: other server processes and the CLI see the same files ----------


def test_a_second_server_process_on_the_same_database_reads_what_the_first_wrote(env, db):
    async def main() -> tuple[str, str]:
        async with stdio_session("--db", db, "--user", "alice") as first:
            await ok(first, "write_file", file_path="/memories/plan.md", content="Step 1\n")
            async with stdio_session("--db", db, "--user", "alice") as second:
                seen = await ok(second, "read_file", file_path="/memories/plan.md")
                await ok(
                    second,
                    "edit_file",
                    file_path="/memories/plan.md",
                    old_string="1",
                    new_string="2",
                )
            return seen, await ok(first, "read_file", file_path="/memories/plan.md")

    assert run(main) == ("     1\tStep 1", "     1\tStep 2")


def test_the_memory_commands_see_what_mcp_wrote_and_mcp_sees_what_they_wrote(env, db, monkeypatch):
    monkeypatch.setenv("DEEPMEMORY_MCP_TOKEN", ALICE_TOKEN)  # for HTTP servers: stdio ignores it

    async def write() -> None:
        async with stdio_session("--db", db, "--user", "alice") as session:
            await ok(session, "write_file", file_path="/memories/prefs.txt", content="Metric\n")

    run(write)
    cat = deepmemory("memory", "cat", "/memories/prefs.txt", "--db", db, "--user", "alice")
    assert (cat.returncode, cat.stdout) == (0, "Metric\n")
    assert (
        invoke("memory", "ls", "--db", db, "--user", "alice").stdout
        == "/memories/prefs.txt (7 B)\n"
    )
    assert (
        invoke("memory", "write", "todo.txt", "Buy tea\n", "--db", db, "--user", "alice").exit_code
        == 0
    )

    async def read() -> str:
        async with stdio_session("--db", db, "--user", "alice") as session:
            return await ok(session, "read_file", file_path="/memories/todo.txt")

    assert run(read) == "     1\tBuy tea"


# -- 4. users ------------------------------------------------------------------------------


def test_another_user_sees_nothing_of_alices_memory_whatever_the_tool_arguments_say(env, db):
    async def main() -> dict[str, Any]:
        async with stdio_session("--db", db, "--user", "alice") as alice:
            await ok(
                alice, "write_file", file_path="/memories/secret.md", content="alice's secret\n"
            )
        async with stdio_session("--db", db, "--user", "bob") as bob:
            return {
                "ls": await call(bob, "ls", path="/memories"),
                "read": await call(bob, "read_file", file_path="/memories/secret.md"),
                "as alice": await call(
                    bob, "read_file", file_path="/memories/secret.md", user="alice"
                ),
                "grep": await call(bob, "grep", pattern="secret"),
                "glob": await call(bob, "glob", pattern="**"),
                "resources": (await bob.list_resources()).resources,
                "write": await call(
                    bob,
                    "write_file",
                    file_path="/memories/secret.md",
                    content="bob\n",
                    user="alice",
                ),
            }

    seen = run(main)
    assert seen["ls"] == ("'/memories' is empty.", False)
    missing = "Error: '/memories/secret.md' not found. Use ls('/memories') to see what exists."
    assert seen["read"] == seen["as alice"] == (missing, True)
    assert seen["grep"] == ("No matches for 'secret'.", False)
    assert seen["glob"] == ("No files match '**'.", False)
    assert seen["resources"] == []
    assert not seen["write"][1]
    alice = invoke("memory", "cat", "secret.md", "--db", db, "--user", "alice")
    bob = invoke("memory", "cat", "secret.md", "--db", db, "--user", "bob")
    assert (alice.stdout, bob.stdout) == ("alice's secret\n", "bob\n")


# -- 5. hostile input ------------------------------------------------------------------------

HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("read_file", {"file_path": "/memories/../../etc/passwd"}, "'..' segments are not allowed"),
    ("read_file", {"file_path": "/etc/passwd"}, "is outside '/memories'"),
    ("write_file", {"file_path": "/memories/a\x00b", "content": "x"}, "control character U+0000"),
    ("ls", {"path": "/memories/" + "a" * 100_000}, "longer than 1024 characters"),
    ("glob", {"pattern": "**", "path": "/memories/../.."}, "'..' segments are not allowed"),
    ("grep", {"pattern": "root", "path": "/"}, ""),  # searches memory only: no match
    ("write_file", {"file_path": "/memories/huge.txt", "content": "x" * 2_000_000}, "-byte limit"),
    ("write_file", {"file_path": "/scratch.txt", "content": "x"}, "is outside '/memories'"),
    ("read_file", {"file_path": 42}, "Error: invalid arguments for read_file"),
    ("edit_file", {"file_path": "/memories/x"}, "Error: invalid arguments for edit_file"),
    ("read_file", {"file_path": "/memories/x", "offset": -5}, "Error"),
    ("grep", {"pattern": "x", "output_mode": "everything"}, "Error: invalid arguments for grep"),
    ("rm_rf", {"path": "/"}, "Error: unknown tool 'rm_rf'"),
]


def test_hostile_paths_and_arguments_are_tool_errors_and_the_session_keeps_serving(env, db):
    async def main() -> tuple[list[tuple[str, bool]], str]:
        async with stdio_session("--db", db, "--user", "alice") as session:
            answers = []
            for name, args, _ in HOSTILE:
                answers.append(await call(session, name, **args))
                await ok(session, "write_file", file_path="/memories/alive.txt", content="yes\n")
            return answers, await ok(session, "read_file", file_path="/memories/alive.txt")

    answers, alive = run(main)
    for (name, _, expected), (answer, failed) in zip(HOSTILE, answers, strict=True):
        if name == "grep" and not expected:
            assert (answer, failed) == ("No matches for 'root'.", False)
            continue
        assert failed, (name, answer)
        assert answer.startswith("Error") and expected in answer, (name, answer)
        assert "Traceback" not in answer and "root:" not in answer
    assert alive == "     1\tyes"
    listing = invoke("memory", "ls", "--db", db, "--user", "alice").stdout
    assert listing == "/memories/alive.txt (4 B)\n"


def test_an_unexpected_exception_is_an_error_that_names_no_internals_and_the_server_serves_on():
    store = InMemoryStore()
    server = MemoryServer(
        lambda user: Failing(
            StoreBackend(store=store, namespace=("memories", user)).mounted("/memories")
        ),
        user="alice",
    )

    async def main() -> dict[str, Any]:
        async with Client(server.server) as client:
            grep = await client.call_tool("grep", {"pattern": "x"})
            wrote = await client.call_tool(
                "write_file", {"file_path": "/memories/a.md", "content": "A\n"}
            )
            try:
                await client.read_resource("memory:///memories/a.md")
            except MCPError as error:
                resource = error.message
            prompt = await client.get_prompt("memory")
            return {
                "grep": (text(grep), grep.is_error),
                "wrote": (text(wrote), wrote.is_error),
                "resource": resource,
                "prompt": prompt.messages[0].content.text,  # type: ignore[union-attr]
            }

    seen = run(main)
    assert seen["grep"] == (errors.tool_failed("grep", RuntimeError()), True)
    assert seen["wrote"] == ("Wrote '/memories/a.md'.", False)
    assert "could not read the resource (OSError)" in seen["resource"]
    assert seen["prompt"] == GUIDELINES + "\n\n" + MAP_UNAVAILABLE
    assert "secret" not in json.dumps(seen)


# -- 6. streamable HTTP ----------------------------------------------------------------------


def test_over_http_each_token_is_one_user_and_requests_without_the_right_token_get_401(env, db):
    config = env / ".config" / "deepmemory" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[mcp.tokens]\n"{BOB_TOKEN}" = "bob"\n', encoding="utf-8")

    with http_server("--db", db, "--user", "alice", "--token", ALICE_TOKEN) as url:
        assert post_initialize(url, None) == 401
        assert post_initialize(url, "Bearer wrong-" + ALICE_TOKEN) == 401
        assert post_initialize(url, ALICE_TOKEN) == 401  # no "Bearer " scheme
        assert post_initialize(url, f"Bearer {ALICE_TOKEN}") == 200
        assert post_initialize(url, f"Bearer {BOB_TOKEN}") == 200

        async def main() -> tuple[str, str, tuple[str, bool]]:
            async with http_session(url, ALICE_TOKEN) as alice:
                await ok(alice, "write_file", file_path="/memories/a.md", content="from alice\n")
                async with http_session(url, BOB_TOKEN) as bob:
                    await ok(bob, "write_file", file_path="/memories/b.md", content="from bob\n")
                    bobs = await ok(bob, "ls", path="/memories")
                    stolen = await call(bob, "read_file", file_path="/memories/a.md")
                return await ok(alice, "ls", path="/memories"), bobs, stolen

        alices, bobs, stolen = run(main)

    assert alices == "/memories/a.md (11 B)"
    assert bobs == "/memories/b.md (9 B)"
    assert stolen[1] and "not found" in stolen[0]
    assert invoke("memory", "cat", "a.md", "--db", db, "--user", "alice").stdout == "from alice\n"
    assert invoke("memory", "cat", "b.md", "--db", db, "--user", "bob").stdout == "from bob\n"


def test_over_http_on_loopback_without_a_token_the_server_serves_the_user_of_its_options(env, db):
    with http_server("--db", db, "--user", "carol") as url:

        async def main() -> str:
            async with http_session(url, None) as session:
                return await ok(session, "write_file", file_path="/memories/c.md", content="c\n")

        assert run(main) == "Wrote '/memories/c.md'."
    assert invoke("memory", "cat", "c.md", "--db", db, "--user", "carol").stdout == "c\n"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "[::]", "example.com"])
def test_a_non_loopback_address_without_a_token_is_refused(env, db, host):
    result = invoke("mcp", "--http", f"{host}:8765", "--db", db)
    assert result.exit_code == 2
    assert "--token" in one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "127.0.0.1:8765", "--token", "short"], "at least 16"),
        (["--token", ALICE_TOKEN], "--token only applies with --http"),
        (["--http", "127.0.0.1:http"], "HOST:PORT"),
        (["--http", "127.0.0.1:70000"], "HOST:PORT"),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_code_2(env, db, args, message):
    result = invoke("mcp", *args, "--db", db)
    assert result.exit_code == 2
    assert message in one_error_line(result.stderr)


def test_a_bad_token_table_in_the_config_file_is_a_configuration_error(env, db):
    config = env / ".config" / "deepmemory" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[mcp.tokens]\n"{BOB_TOKEN}" = "../bob"\n', encoding="utf-8")
    result = invoke("mcp", "--http", "127.0.0.1:0", "--db", db)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "[mcp.tokens]" in line and BOB_TOKEN not in line  # the secret is never printed


def test_without_the_mcp_extra_the_command_says_how_to_install_it(env, db, monkeypatch):
    monkeypatch.delitem(sys.modules, "deepmemory.integrations.mcp", raising=False)
    monkeypatch.delattr(integrations, "mcp", raising=False)
    monkeypatch.setitem(sys.modules, "mcp", None)
    result = invoke("mcp", "--db", db)
    assert result.exit_code == 2
    assert "pip install 'deepmemory[mcp]'" in one_error_line(result.stderr)


# -- 7. resources and the prompt -------------------------------------------------------------


def test_memory_files_are_resources_and_the_prompt_carries_the_agents_memory_guidelines(env, db):
    blob = bytes(range(256))
    assert (
        invoke(
            "memory", "write", "img/logo.bin", "--db", db, "--user", "alice", input=blob
        ).exit_code
        == 0
    )

    async def main() -> dict[str, Any]:
        async with stdio_session("--db", db, "--user", "alice") as session:
            await ok(
                session,
                "write_file",
                file_path="/memories/notes.md",
                content="Project notes\nmore\n",
            )
            resources = (await session.list_resources()).resources
            templates = (await session.list_resource_templates()).resource_templates
            notes = await session.read_resource("memory:///memories/notes.md")
            logo = await session.read_resource("memory:///memories/img/logo.bin")
            errors = []
            for uri in (
                "memory:///memories/missing.md",
                "memory:///etc/passwd",
                "file:///etc/passwd",
            ):
                try:
                    await session.read_resource(uri)
                except MCPError as error:
                    errors.append(error.message)
            prompts = (await session.list_prompts()).prompts
            prompt = await session.get_prompt("memory")
            return {
                "instructions": session.initialize_result.instructions,  # type: ignore[union-attr]
                "resources": resources,
                "templates": templates,
                "notes": notes.contents,
                "logo": logo.contents,
                "errors": errors,
                "still": await ok(session, "ls", path="/memories"),
                "prompts": prompts,
                "prompt": prompt,
            }

    seen = run(main)
    assert [(r.uri, r.size) for r in seen["resources"]] == [
        ("memory:///memories/img/logo.bin", 256),
        ("memory:///memories/notes.md", 19),
    ]
    assert [t.uri_template for t in seen["templates"]] == ["memory:///memories/{path}"]
    [notes] = seen["notes"]
    assert (notes.uri, notes.text, notes.mime_type) == (
        "memory:///memories/notes.md",
        "Project notes\nmore\n",
        "text/markdown",
    )
    [logo] = seen["logo"]
    assert base64.b64decode(logo.blob) == blob
    assert len(seen["errors"]) == 3
    assert "not found" in seen["errors"][0] and "outside '/memories'" in seen["errors"][1]
    assert "memory:///memories/" in seen["errors"][2]
    assert seen["still"] == "/memories/img/\n/memories/notes.md (19 B)"

    assert GUIDELINES in seen["instructions"]
    assert [p.name for p in seen["prompts"]] == ["memory"]
    [message] = seen["prompt"].messages
    assert message.role == "user"
    assert message.content.text.startswith(GUIDELINES)
    assert "- /memories/notes.md (19 B): Project notes" in message.content.text


# -- 8. PostgreSQL ---------------------------------------------------------------------------


def test_over_postgresql_mcp_and_the_cli_share_the_users_memory(env):
    url = postgres_url()
    user = f"mcp-{uuid.uuid4().hex[:12]}"

    async def write() -> tuple[str, str]:
        async with stdio_session("--db", url, "--user", user) as session:
            wrote = await ok(
                session, "write_file", file_path="/memories/pg.md", content="on postgres\n"
            )
            return wrote, await ok(session, "grep", pattern="postgres", output_mode="content")

    async def clean() -> str:
        async with stdio_session("--db", url, "--user", user) as session:
            return await ok(session, "delete", file_path="/memories/pg.md")

    try:
        assert run(write) == ("Wrote '/memories/pg.md'.", "/memories/pg.md:1: on postgres")
        cat = invoke("memory", "cat", "pg.md", "--db", url, "--user", user)
        assert (cat.exit_code, cat.stdout) == (0, "on postgres\n")
        other = invoke("memory", "ls", "--db", url, "--user", user + "-other")
        assert other.stdout == "'/memories' is empty.\n"
    finally:
        assert run(clean) == "Deleted '/memories/pg.md'."


# -- the README's set-ups ----------------------------------------------------------------------


def test_the_readme_set_ups_use_options_the_command_has_and_a_valid_token_table(env):
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Using your memory from MCP clients\n", 1)[1].split("\n## ", 1)[0]

    def blocks(language: str) -> list[str]:
        return [part.split("```", 1)[0] for part in section.split(f"```{language}\n")[1:]]

    [desktop] = blocks("json")
    commands = [json.loads(desktop)["mcpServers"]["deepmemory"]["args"]]
    for block in blocks("bash"):
        for line in block.splitlines():
            if "deepmemory mcp" in line:
                commands.append(
                    shlex.split("mcp" + line.split("deepmemory mcp", 1)[1].split("#")[0])
                )
    assert len(commands) == 3  # Claude Desktop, Claude Code, the HTTP server
    for args in commands:
        assert args[0] == "mcp"
        assert invoke(*args, "--help").exit_code == 0, args  # an unknown option fails here
    [table] = blocks("toml")
    assert set(tomllib.loads(table)["mcp"]["tokens"].values()) == {"alice", "bob"}
