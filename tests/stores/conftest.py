"""Fixtures for our stores: a fresh SQLite file per test, a PostgreSQL schema per session.

PostgreSQL tests use the server named by ``DEEPMEMORY_TEST_POSTGRES_URL``: without it
(or when it cannot be reached) they skip with the reason locally and fail under
``CI=true``. They share one schema created for this session (dropped at the end) and
empty its tables after each test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.stores._base import SQLStore
from tests.conftest import POSTGRES_ENV, postgres_url

STORE_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL (skip locally, fail under CI=true otherwise)."""
    url = postgres_url()
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL from {POSTGRES_ENV} is unreachable: {str(exc).strip()}"
        if _in_ci():
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def pgvector_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server with pgvector, from the ``pgserver`` package (a dev
    dependency), started in a temporary folder for this session.

    The machine's own server has no pgvector; this one lets the approximate (HNSW)
    path run. Skipped locally without ``pgserver``; under ``CI=true`` a failure.
    """
    try:
        import pgserver
    except ImportError as exc:
        reason = f"pgserver is not installed ({exc}): pip install -e '.[dev]'"
        if _in_ci():
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    server = pgserver.get_server(tmp_path_factory.mktemp("pgvector"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_schema(pg_url: str) -> Iterator[str]:
    """A schema of its own for this test session."""
    schema = f"deepmemory_test_{uuid.uuid4().hex[:12]}"
    yield schema
    drop_schema(pg_url, schema)


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _empty_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> ALL(%s)",
            (schema, ["deepmemory_migrations", "checkpoint_migrations"]),
        ).fetchall()
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(schema, t) for (t,) in tables)
            conn.execute(sql.SQL("TRUNCATE {}").format(names))


@pytest.fixture
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], SQLStore]]:
    """``make_store(kind, **options)``: a new store of that kind (on the test's one
    database); every one is closed after the test."""
    made: list[SQLStore] = []
    pg: list[tuple[str, str]] = []
    vector_schema = f"t_{uuid.uuid4().hex[:12]}"  # this test's, on the pgvector server
    dropped: list[tuple[str, str]] = []

    def make(kind: str, **options: Any) -> SQLStore:
        store: SQLStore
        if kind == "sqlite":
            store = SQLiteStore(tmp_path / "memory.db", **options)
        elif kind == "pgvector":  # a server of its own, with pgvector (``pgvector_url``)
            url = request.getfixturevalue("pgvector_url")
            store = PostgresStore(url, schema=vector_schema, **options)
            dropped.append((url, vector_schema))
        else:
            url = request.getfixturevalue("pg_url")
            schema = request.getfixturevalue("pg_schema")
            store = PostgresStore(url, schema=schema, **options)
            pg.append((url, schema))
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    for url, schema in set(pg):
        _empty_schema(url, schema)
    for url, schema in set(dropped):
        drop_schema(url, schema)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each store engine in turn."""
    return str(request.param)


@pytest.fixture
def store(make_store: Callable[[str], SQLStore], store_kind: str) -> SQLStore:
    """A fresh, empty store of each kind."""
    return make_store(store_kind)


def m001_put(dialect, namespace, key, value):
    """A put as the first release wrote it (m001's columns only): (SQL, params) to execute
    on a schema migrated only that far, standing in for data an old version left."""
    from deepmemory.stores import _sql

    params = _sql._write_params(namespace, key, value)
    for later in ("ttl_minutes", "expires_at"):  # m009
        params.pop(later)
    columns = "namespace, key, value, created_at, updated_at, version, parent, encoding, size"
    columns += ", modified_at, text_override"
    if dialect == "sqlite":
        version, value_sql = "(SELECT version + 1 FROM deepmemory_clock WHERE id = 1)", ":value"
        rest = ":parent, :encoding, :size, :modified_at, :text_override"
        sql = f"INSERT INTO deepmemory_items ({columns}) VALUES (:ns, :key, {value_sql}, "
        sql += f":now, :now, {version}, {rest})"
        return sql, params
    rest = "%(parent)s, %(encoding)s, %(size)s, %(modified_at)s, %(text_override)s"
    sql = f"INSERT INTO deepmemory_items ({columns}) VALUES (%(ns)s, %(key)s, "
    sql += "CAST(%(value)s AS jsonb), CAST(%(now)s AS timestamptz), CAST(%(now)s AS timestamptz), "
    sql += f"nextval('deepmemory_versions'), {rest})"
    return sql, params
