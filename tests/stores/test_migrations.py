"""Migrations bring a blank or an older database up to date, once, even when raced."""

from __future__ import annotations

import sqlite3
import threading
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from deepmemory.errors import ConfigError
from deepmemory.stores import MIGRATIONS, PostgresStore, SQLiteStore
from deepmemory.stores.migrations import (
    applied_postgres,
    applied_sqlite,
    migrate_postgres,
    migrate_sqlite,
)
from tests.stores.conftest import drop_schema

ALL = [m.name for m in MIGRATIONS]


def test_migrations_are_numbered_and_named_in_order():
    assert ALL == sorted(ALL) and len(set(ALL)) == len(ALL)
    assert all(m.name[:1] == "m" and m.name[1:4].isdigit() for m in MIGRATIONS)
    assert all(m.sqlite or m.postgres for m in MIGRATIONS)
    # Only engine tuning and PostgreSQL's concurrency (SQLite has one writer at a time)
    # may leave an engine out.
    assert [m.name for m in MIGRATIONS if not m.sqlite] == [
        "m008_grep_after_writes",
        "m013_deletions_per_transaction",
    ]
    assert all(m.postgres for m in MIGRATIONS)


def test_an_unknown_target_migration_is_refused():
    with pytest.raises(ValueError, match="m001_items"):
        migrate_sqlite(sqlite3.connect(":memory:", isolation_level=None), until="m999_nope")


def _first_release_put(dialect, value):
    from tests.stores.conftest import m001_put

    return m001_put(dialect, ("acme",), "/old.txt", value)


def _old_sqlite_database(path):
    """A database as the first release left it, holding a file written by that release."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate_sqlite(conn, until="m001_items") == ["m001_items"]
    value = {"content": "old memory: needle\n", "encoding": "utf-8"}
    conn.execute(*_first_release_put("sqlite", value))
    return conn


def test_a_blank_sqlite_file_gets_every_migration(tmp_path):
    with SQLiteStore(tmp_path / "new.db") as store:
        assert applied_sqlite(store._connection()) == ALL


def test_an_older_sqlite_file_is_migrated_and_its_files_become_searchable(tmp_path):
    path = tmp_path / "old.db"
    _old_sqlite_database(path).close()
    with SQLiteStore(path) as store:
        assert applied_sqlite(store._connection()) == ALL
        assert [(m.path, m.line) for m in store.file_grep(("acme",), "/", "needle", None)] == [
            ("/old.txt", 1)
        ]
        store.put(("acme",), "/new.txt", {"content": "new needle"})
        assert len(store.file_grep(("acme",), "/", "needle", None)) == 2
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO deepmemory_items_fts(deepmemory_items_fts, rank) VALUES ('integrity-check', 1)"
    )
    assert migrate_sqlite(sqlite3.connect(path, isolation_level=None)) == []


def _all_at_once(count, action):
    """Run ``action`` in ``count`` threads released together; return what they raised."""
    barrier, errors = threading.Barrier(count), []

    def run():
        try:
            barrier.wait()
            action()
        except Exception as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_sqlite_stores_opened_at_once_apply_each_migration_once(tmp_path):
    path = tmp_path / "race.db"
    assert _all_at_once(8, lambda: SQLiteStore(path).close()) == []
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM deepmemory_migrations")] == ALL


@pytest.fixture
def fresh_schema(pg_url):
    schema = f"deepmemory_migrate_{uuid.uuid4().hex[:10]}"
    yield schema
    drop_schema(pg_url, schema)


@pytest.mark.postgres
def test_a_blank_postgres_schema_is_created_on_first_use(pg_url, fresh_schema):
    store = PostgresStore(pg_url, schema=fresh_schema)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert applied_postgres(conn, schema=fresh_schema) == []
    store.put(("a",), "k", {"v": 1})
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert applied_postgres(conn, schema=fresh_schema) == ALL


@pytest.mark.postgres
def test_an_older_postgres_schema_is_migrated_and_its_files_become_searchable(pg_url, fresh_schema):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate_postgres(conn, schema=fresh_schema, until="m001_items") == ["m001_items"]
        value = {"content": "old memory: needle\n", "encoding": "utf-8"}
        conn.execute(*_first_release_put("postgres", value))
    with PostgresStore(pg_url, schema=fresh_schema) as store:
        matches = store.file_grep(("acme",), "/", "needle", None)
        assert [(m.path, m.line) for m in matches] == [("/old.txt", 1)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert applied_postgres(conn, schema=fresh_schema) == ALL
        index = conn.execute(
            "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'deepmemory_items_grep'",
            (fresh_schema,),
        ).fetchone()
        assert index is not None
        assert migrate_postgres(conn, schema=fresh_schema) == []


@pytest.mark.postgres
def test_postgres_stores_starting_at_once_apply_each_migration_once(pg_url, fresh_schema):
    def start():
        with PostgresStore(pg_url, schema=fresh_schema) as store:
            store.get(("a",), "k")

    assert _all_at_once(6, start) == []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{fresh_schema}"')
        rows = conn.execute("SELECT name FROM deepmemory_migrations ORDER BY name").fetchall()
    assert [r[0] for r in rows] == ALL


@pytest.mark.postgres
def test_a_server_without_pg_trgm_gets_every_table_and_a_grep_without_its_index(make_store):
    """pgserver's PostgreSQL (``pgvector_url``) ships without contrib's pg_trgm."""
    from deepmemory.backends import StoreBackend

    store = make_store("pgvector")
    backend = StoreBackend(store=store, namespace=("trgm",))
    assert backend.write("/notes/a.md", "alpha\nneedle here\n").error is None
    assert backend.write("/notes/b.md", "beta\n").error is None
    matches = backend.grep("needle", "/")
    assert [(m.path, m.line) for m in matches.matches] == [("/notes/a.md", 2)]
    with store._connection() as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'deepmemory_items_grep' "
            "AND schemaname = %s",
            (store.schema,),
        ).fetchone()
    assert found == (0,)


@pytest.fixture
def app_role(pg_url):
    """A login role with no privilege on the database (as an application's user is)."""
    role = f"deepmemory_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        except psycopg.errors.InsufficientPrivilege as exc:
            pytest.skip(f"the test user may not create roles: {exc}")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    yield role
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.postgres
def test_a_user_without_create_on_the_database_uses_the_schema_an_administrator_made(
    pg_url, fresh_schema, app_role
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(fresh_schema), sql.Identifier(app_role)
            )
        )
    as_app = make_conninfo(pg_url, user=app_role)
    with PostgresStore(as_app, schema=fresh_schema) as store:
        store.put(("a",), "/k.md", {"content": "needle\n", "encoding": "utf-8"})
        assert [m.path for m in store.file_grep(("a",), "/", "needle", None)] == ["/k.md"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert applied_postgres(conn, schema=fresh_schema) == ALL


@pytest.mark.postgres
def test_a_user_who_may_not_create_the_schema_is_told_what_to_grant_or_run(
    pg_url, fresh_schema, app_role
):
    store = PostgresStore(make_conninfo(pg_url, user=app_role), schema=fresh_schema)
    with pytest.raises(ConfigError) as refused, store:
        store.get(("a",), "k")
    message = str(refused.value)
    assert f"schema {fresh_schema!r} as user {app_role!r}" in message
    assert "permission denied for database" in message
    assert f'CREATE SCHEMA "{fresh_schema}" AUTHORIZATION "{app_role}";' in message
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert applied_postgres(conn, schema=fresh_schema) == []
