"""Stores that keep memories in a database and answer file queries inside it.

``SQLiteStore(path)`` and ``PostgresStore(connection_string=...)`` are LangGraph
``BaseStore`` implementations that also implement
:class:`~deepmemory.backends.protocol.SupportsFileQueries`, so ``StoreBackend`` lists,
globs, greps and edits (compare-and-swap) in the database. Each serves ``invoke`` and
``ainvoke`` alike and offers ``checkpointer()`` for thread state in the same database.
Both keep a revision history of every file (``history``, ``revision``, ``diff``,
``restore``; see :mod:`deepmemory.history`), as does ``InMemoryHistoryStore`` for tests.

Each is imported on first use, so a SQLite user never loads psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepmemory._lazy import exports

if TYPE_CHECKING:
    from deepmemory.stores.memory import InMemoryHistoryStore
    from deepmemory.stores.migrations import MIGRATIONS, Migration
    from deepmemory.stores.postgres import PoolBusyError, PostgresStore
    from deepmemory.stores.sqlite import SQLiteStore

__all__ = [
    "MIGRATIONS",
    "InMemoryHistoryStore",
    "Migration",
    "PoolBusyError",
    "PostgresStore",
    "SQLiteStore",
]


__getattr__, __dir__ = exports(
    __name__,
    {
        "InMemoryHistoryStore": "deepmemory.stores.memory",
        "MIGRATIONS": "deepmemory.stores.migrations",
        "Migration": "deepmemory.stores.migrations",
        "PoolBusyError": "deepmemory.stores.postgres",
        "PostgresStore": "deepmemory.stores.postgres",
        "SQLiteStore": "deepmemory.stores.sqlite",
    },
)
