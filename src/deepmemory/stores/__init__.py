"""Stores that keep memories in a database and answer file queries inside it.

``SQLiteStore(path)`` and ``PostgresStore(connection_string=...)`` are LangGraph
``BaseStore`` implementations that also implement
:class:`~deepmemory.backends.protocol.SupportsFileQueries`, so ``StoreBackend`` lists,
globs, greps and edits (compare-and-swap) in the database. Each serves ``invoke`` and
``ainvoke`` alike and offers ``checkpointer()`` for thread state in the same database.
"""

from deepmemory.stores.migrations import MIGRATIONS, Migration
from deepmemory.stores.postgres import PostgresStore
from deepmemory.stores.sqlite import SQLiteStore

__all__ = ["MIGRATIONS", "Migration", "PostgresStore", "SQLiteStore"]
