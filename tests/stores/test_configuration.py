"""Setting a store up: where its data goes, and clear errors for the developer."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from deepmemory.errors import ConfigError
from deepmemory.stores import PostgresStore, SQLiteStore


def test_missing_parent_directories_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "memory.db"
    with SQLiteStore(path) as store:
        store.put(("n",), "k", {"v": 1})
    assert path.exists()


def test_the_sqlite_file_is_in_wal_mode_with_full_sync(tmp_path):
    with SQLiteStore(tmp_path / "m.db") as store:
        conn = store._connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000


@pytest.mark.parametrize("path", [":memory:", "", "file:x?mode=memory"])
def test_an_in_memory_sqlite_database_is_refused_with_an_alternative(path):
    with pytest.raises(ConfigError, match="InMemoryStore"):
        SQLiteStore(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just text, not SQLite " * 100)
    with pytest.raises(ConfigError, match="Cannot open SQLite database"):
        SQLiteStore(path)


def test_a_parent_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="Cannot create the directory"):
        SQLiteStore(tmp_path / "file" / "memory.db")


def test_postgres_needs_a_connection_string():
    with pytest.raises(ConfigError, match="connection string"):
        PostgresStore(connection_string="")


def test_postgres_store_is_lazy_and_never_shows_its_url():
    store = PostgresStore(connection_string="postgresql://me:secret@127.0.0.1:1/none")
    assert "secret" not in repr(store)
    store.close()


def test_sqlite_store_data_is_readable_by_plain_sqlite(tmp_path):
    with SQLiteStore(tmp_path / "m.db") as store:
        store.put(("users", "alice"), "/prefs.txt", {"content": "dark"})
    row = (
        sqlite3.connect(tmp_path / "m.db")
        .execute("SELECT namespace, key, json_extract(value, '$.content') FROM deepmemory_items")
        .fetchone()
    )
    assert row == ("users.alice", "/prefs.txt", "dark")


@pytest.mark.postgres
def test_a_postgres_store_opens_and_closes_inside_async_code(pg_url, pg_schema):
    async def scenario():
        async with PostgresStore(pg_url, schema=pg_schema) as store:
            await store.aput(("async-close",), "k", {"v": 1})
            value = (await store.aget(("async-close",), "k")).value
            await store.adelete(("async-close",), "k")
            with pytest.raises(Exception, match="closed"):
                store.close()
                await store.aget(("async-close",), "k")
            return value

    assert asyncio.run(scenario()) == {"v": 1}
