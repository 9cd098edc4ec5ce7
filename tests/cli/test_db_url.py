"""``--db postgresql://...?schema=NAME``: the command line works in any PostgreSQL schema.

A user whose administrator made a schema for them (the README's deployment notes) can
reach it from every command: memories, conversations and history live in that schema
and nowhere else. Other URL parameters reach the server as given.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from deepmemory.cli._store import postgres_target, shown_db
from deepmemory.stores import PostgresStore
from tests.cli.conftest import PREFERENCE, SAVE, SAVED, deepmemory, invoke, one_error_line
from tests.conftest import postgres_url


@pytest.fixture
def schema() -> str:
    name = f"deepmemory_cli_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


@pytest.mark.parametrize(
    ("db", "target"),
    [
        ("postgresql://u@h/db", ("postgresql://u@h/db", "public")),
        ("postgresql:///test", ("postgresql:///test", "public")),  # a local socket
        (
            "postgresql:///test?host=127.0.0.1&schema=s&user=postgres",
            ("postgresql:///test?host=127.0.0.1&user=postgres", "s"),
        ),
        ("postgresql://u:p#q@h/db?schema=s", ("postgresql://u:p#q@h/db", "s")),
        ("postgresql://u:p?q@h/db?schema=s", ("postgresql://u:p?q@h/db", "s")),
        ("postgresql://h/db?user=a@b&schema=s", ("postgresql://h/db?user=a@b", "s")),
        ("postgresql://u@[::1]:5432/db?schema=s", ("postgresql://u@[::1]:5432/db", "s")),
        ("postgresql://u@h/db?schema=app", ("postgresql://u@h/db", "app")),
        (
            "postgres://u@h:5433/db?sslmode=require&schema=My%20App&connect_timeout=5",
            ("postgres://u@h:5433/db?sslmode=require&connect_timeout=5", "My App"),
        ),
        (
            "postgresql://u@h/db?application_name=x",
            ("postgresql://u@h/db?application_name=x", "public"),
        ),
    ],
)
def test_the_schema_is_taken_from_the_url_and_the_rest_reaches_the_server(db, target):
    assert postgres_target(db) == target


@pytest.mark.parametrize(
    ("db", "why"),
    [
        ("postgresql://u@h/db?schema=", "a schema name"),
        ("postgresql://u@h/db?schema=a&schema=b", "once"),
    ],
)
def test_an_empty_or_repeated_schema_is_one_line_and_touches_no_server(home, db, why):
    result = invoke("memory", "ls", "--db", db)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "schema" in line and why in line


@pytest.mark.parametrize(
    "db",
    [
        "postgresql://u:secret@h/db?schema=app",
        "postgresql://u:se#cret@h/db?schema=app",
        "postgresql://u:se?cret@h/db?schema=app",
        "postgresql://u:se/cret@h/db?schema=app",
        "postgresql://h/db?user=u&password=secret&schema=app",
    ],
)
def test_a_shown_url_keeps_its_schema_and_hides_its_password(db):
    shown = shown_db(db)
    assert "secret" not in shown and "cret" not in shown, shown
    assert shown.startswith("postgresql://") and shown.endswith("schema=app")


def test_a_local_socket_url_without_a_host_reaches_the_server(home):
    """``postgresql:///db`` (no host: libpq's local default) keeps its three slashes."""
    server = urlsplit(postgres_url())
    query = f"host={server.hostname}&port={server.port or 5432}"
    if server.username:
        query += f"&user={server.username}"
    db = f"postgresql://{server.path}?{query}"
    result = invoke("memory", "ls", "--db", db, "--user", f"socket-{uuid.uuid4().hex[:8]}")
    assert result.exit_code == 0, result.stderr
    assert "is empty" in result.stdout


def test_memory_commands_read_and_write_only_the_schema_in_the_url(home, schema):
    url, user = postgres_url(), f"schema-{uuid.uuid4().hex[:10]}"
    db = with_query(url, f"schema={schema}")
    wrote = invoke("memory", "write", "notes.md", "- in the schema", "--db", db, "--user", user)
    assert wrote.exit_code == 0, wrote.stderr
    listed = invoke("memory", "ls", "--db", db, "--user", user, "--json")
    assert [e["path"] for e in json.loads(listed.stdout)] == ["/memories/notes.md"], (
        wrote.stdout,
        wrote.stderr,
        db,
        listed.stdout,
        listed.stderr,
    )
    with PostgresStore(url, schema=schema) as there:
        assert there.get(("memories", user), "/notes.md") is not None
    with PostgresStore(url) as public:
        assert public.get(("memories", user), "/notes.md") is None
    elsewhere = invoke("memory", "ls", "--db", url, "--user", user, "--json")
    assert json.loads(elsewhere.stdout) == []


def test_a_conversation_and_its_memory_live_in_the_schema_in_the_url(model_env, schema):
    url, user = postgres_url(), f"schema-{uuid.uuid4().hex[:10]}"
    db = with_query(url, f"schema={schema}")
    saved = deepmemory("run", SAVE, "--db", db, "--user", user, "--json")
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["reply"] == SAVED
    thread = json.loads(saved.stdout)["thread_id"]
    shown = deepmemory("threads", "ls", "--db", db, "--user", user, "--json")
    assert shown.returncode == 0, shown.stderr
    assert thread in shown.stdout
    with psycopg.connect(url) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        }
    assert {"deepmemory_items", "checkpoints"} <= tables
    with PostgresStore(url, schema=schema) as there:
        item = there.get(("memories", user), "/preferences.txt")
    assert item is not None and PREFERENCE.strip() in json.dumps(item.value)
