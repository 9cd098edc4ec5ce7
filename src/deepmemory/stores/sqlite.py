"""SQLiteStore: a LangGraph store and a file repository in one SQLite file.

Everything lives in the one database file (schema in ``migrations``): the items, the
grep index, and, through :meth:`SQLiteStore.checkpointer`, LangGraph's checkpoint
tables, so memories and thread state survive a restart together.

Invariants:

* **Shared by processes.** WAL mode, a busy timeout, and every write in a
  ``BEGIN IMMEDIATE`` transaction (the write lock is taken before anything is read,
  so two writers never deadlock upgrading a read lock). Edits are compare-and-swap
  on ``version``, so concurrent appends from several processes all land.
* **Durable.** ``synchronous=FULL``: a write that returned is on disk; it survives the
  process being killed and the machine losing power.
* **Thread-safe.** One connection per thread (SQLite connections are not shared);
  async methods run the blocking calls in a worker thread.
* **History in the write's transaction.** A file's write or delete records its
  revision (``_revisions``) inside the same ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.base import IndexConfig, TTLConfig

from deepmemory.backends._match import fullmatch
from deepmemory.errors import ConfigError, DeepMemoryError
from deepmemory.stores._base import SQLStore
from deepmemory.stores._revisions import DEFAULT_KEEP_REVISIONS, Retention
from deepmemory.stores._sql import Dialect, Step
from deepmemory.stores._vectors import VectorIndex, similarity
from deepmemory.stores.migrations import migrate_sqlite

# RETURNING (3.35), generated columns (3.31), the FTS5 trigram tokenizer (3.34).
MIN_SQLITE_VERSION = (3, 35, 0)


def _regexp(pattern: str, text: str | None) -> bool:
    """``regexp(pattern, text)``: a full match of a glob's regex, without backtracking."""
    return text is not None and fullmatch(pattern, text)


class SQLiteStore(SQLStore):
    """Long-term memory in one SQLite file, for LangGraph and deepmemory's file tools.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "memory.db"
        >>> with SQLiteStore(path) as store:
        ...     store.put(("users", "alice"), "/prefs.txt", {"content": "dark mode"})
        ...     store.get(("users", "alice"), "/prefs.txt").value["content"]
        'dark mode'
    """

    dialect: Dialect = "sqlite"
    _TAKEN = (sqlite3.IntegrityError,)
    _refresh_needs_config = True  # as LangGraph's SqliteStore

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        keep_revisions: int | None = DEFAULT_KEEP_REVISIONS,
        keep_days: float | None = None,
        ttl: TTLConfig | None = None,
        index: IndexConfig | None = None,
        strict_loop: bool = False,
    ) -> None:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        Args:
            path: The database file; missing parent directories are created.
            timeout: Seconds to wait for another process's write lock.
            synchronous: ``FULL`` (default) survives power loss; ``NORMAL`` only a
                crash of the process, and commits faster.
            keep_revisions: Revisions of each file kept in its history (older ones
                are pruned when the file is written); ``0`` records none, ``None``
                keeps every one. See :mod:`deepmemory.history`.
            keep_days: Also prune revisions older than this many days (``None``: no
                age limit).
            ttl: LangGraph's ``TTLConfig``: ``default_ttl`` (minutes) for puts that
                give none, ``refresh_on_read`` and ``sweep_interval_minutes`` for
                ``start_ttl_sweeper()``. As in LangGraph's SqliteStore, reads refresh
                TTLs only when ``refresh_on_read`` is set (then, unless the call says
                ``refresh_ttl=False``); on ``PostgresStore``, as in LangGraph's, a
                read refreshes unless the call or ``refresh_on_read: False`` says not.
            index: LangGraph's ``IndexConfig`` (``dims``, ``embed``, ``fields``,
                ``distance_type``): puts embed those fields and
                ``search(query=...)`` ranks by similarity (``_vectors``).
            strict_loop: Refuse a blocking call (``put``, ``get``, ``search``,
                ``batch``, every ``file_*`` method...) made on a thread whose event
                loop is running, with ``asyncio.InvalidStateError``, as LangGraph's
                async stores do: such a call stops every other task of that loop
                until the database answers. Off by default, so scripts and notebooks
                that call the blocking API inside a loop keep working.
        """
        self.retention = Retention(keep_revisions, keep_days)
        self.strict_loop = strict_loop
        self.ttl_config = ttl
        self.index = None if index is None else VectorIndex(index)
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise ConfigError(
                f"SQLiteStore needs SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer; "
                f"this Python has {sqlite3.sqlite_version}. Upgrade Python or install pysqlite3."
            )
        text = os.fspath(path)
        if text == "" or text == ":memory:" or text.startswith("file:"):
            raise ConfigError(
                f"SQLiteStore needs a file path, not {text!r}. For a throwaway store use a "
                "file in a temporary directory, or langgraph's InMemoryStore."
            )
        self.path = Path(text).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the directory for SQLiteStore({text!r}): {exc.strerror}."
            ) from exc
        self.timeout = timeout
        self.synchronous = synchronous
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[_ThreadConnection] = set()
        self._saver: SQLiteCheckpointer | None = None
        self._closed = False
        # On a connection of its own, closed after: SQLite 3.40 fails later statements
        # ("no such table") on a connection that altered a table, once another
        # connection changes the schema (a checkpointer creating its tables).
        migrating = self._connect()
        try:
            migrate_sqlite(migrating)
        finally:
            migrating.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    @property
    def identity(self) -> tuple[str, ...]:
        """The database file (resolved), naming this store's data."""
        return ("sqlite", str(self.path.resolve()))

    def _connect(self, *, for_checkpoints: bool = False) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                # Ours: autocommit, transactions explicit (BEGIN IMMEDIATE for writes).
                # SqliteSaver's: the implicit transactions it commits itself.
                isolation_level="DEFERRED" if for_checkpoints else None,
                check_same_thread=False,  # Closed by close(), possibly from another thread.
            )
            self._use_wal(conn)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise ConfigError(f"Cannot open SQLite database {str(self.path)!r}: {exc}.") from exc
        conn.create_function("regexp", 2, _regexp, deterministic=True)
        conn.create_function("deepmemory_similarity", 5, similarity, deterministic=True)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL mode, waiting (up to ``timeout``) for other openers.

        Changing the journal mode needs the file to itself, and SQLite answers "database
        is locked" at once, without its busy timeout, while several processes open a
        new file together: retry with jittered sleeps instead.
        """
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                    return
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (for inspection; statements go through ``_execute``)."""
        return self._held().conn

    def _held(self) -> _ThreadConnection:
        if self._closed:
            raise DeepMemoryError(f"{self!r} is closed; create a new store to use it again.")
        held: _ThreadConnection | None = getattr(self._local, "held", None)
        if held is None:
            held = _ThreadConnection(self._connect(), self._connections)
            self._local.held = held
        return held

    def _execute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        held = self._held()
        with held.lock:  # close() waits for the statements under way
            if held.closed:
                raise DeepMemoryError(f"{self!r} is closed; create a new store to use it again.")
            return self._execute_on(held.conn, steps)

    def _execute_on(self, conn: sqlite3.Connection, steps: Sequence[Step[Any]]) -> list[Any]:
        if len(steps) == 1 and not steps[0].write:
            return [_run(conn, steps[0])]
        # IMMEDIATE takes the write lock up front: no lock upgrade, so no deadlock.
        conn.execute("BEGIN IMMEDIATE" if any(s.write for s in steps) else "BEGIN")
        try:
            results = [_run(conn, step) for step in steps]
            conn.execute("COMMIT")  # may fail too (disk full, I/O error): then roll back
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full).
                conn.execute("ROLLBACK")
            raise
        return results

    async def _aexecute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        return await asyncio.to_thread(self._execute, steps)

    def checkpointer(self) -> SQLiteCheckpointer:
        """LangGraph's checkpointer on this database file, for ``invoke`` and ``ainvoke``.

        Thread state then survives a restart together with the memories. The same
        object is returned on every call; ``close()`` closes it.

        Example:
            >>> import tempfile, pathlib
            >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "memory.db")
            >>> saver = store.checkpointer()  # create_agent(..., checkpointer=saver)
            >>> store.close()
        """
        with self._lock:
            if self._closed:
                raise DeepMemoryError(f"{self!r} is closed; create a new store to use it again.")
            if self._saver is None:
                saver = SQLiteCheckpointer(self._connect(for_checkpoints=True))
                saver.setup()
                self._saver = saver
            return self._saver

    def close(self) -> None:
        """Close every connection of this store (and of its checkpointer).

        A statement under way in another thread (a worker thread of an interrupted
        ``ainvoke`` still writing its checkpoint) finishes first: closing a SQLite
        connection in use crashes the process. One still busy after ``timeout``
        seconds is left for the garbage collector to close.
        """
        self.stop_ttl_sweeper()
        with self._lock:
            self._closed = True
            held = self._connections.copy()
            self._connections.clear()
            saver, self._saver = self._saver, None
        for connection in held:
            connection.close(self.timeout)
        if saver is not None and saver.lock.acquire(timeout=self.timeout):
            try:
                saver.conn.close()
            finally:
                saver.lock.release()


class _ThreadConnection:
    """One thread's connection, closed when that thread ends (or by ``close()``).

    ``lock`` is held while the thread runs statements on it, so that ``close()``
    from another thread waits for them instead of pulling the connection away.
    """

    def __init__(self, conn: sqlite3.Connection, registry: set[_ThreadConnection]) -> None:
        self.conn, self.registry = conn, registry
        self.lock = threading.Lock()
        self.closed = False
        registry.add(self)  # set.add and discard are atomic: no lock needed.

    def close(self, timeout: float = -1) -> None:
        """Close the connection once no statement runs on it (or leave it, after ``timeout``)."""
        if not self.lock.acquire(timeout=timeout):
            return  # still busy: closed by the garbage collector when its thread lets go
        try:
            if not self.closed:
                self.closed = True
                self.conn.close()
        finally:
            self.lock.release()

    def __del__(self) -> None:
        # Runs when the thread's locals are dropped: no connection outlives its thread.
        self.registry.discard(self)
        self.close()


def _run(conn: sqlite3.Connection, step: Step[Any]) -> Any:
    sql, params = step.query
    rows = conn.execute(sql, params).fetchall()
    for follow_sql, follow_params in step.then(rows) if step.then else ():
        conn.execute(follow_sql, follow_params)
    return step.finish(rows)


class SQLiteCheckpointer(SqliteSaver):
    """LangGraph's ``SqliteSaver`` that also serves ``ainvoke``.

    ``SqliteSaver`` refuses async calls; here they run its (locked, thread-safe) sync
    methods in a worker thread, so one checkpointer serves both modes.
    """

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async ``get_tuple``."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async ``list``."""

        def collect() -> list[CheckpointTuple]:
            return list(self.list(config, filter=filter, before=before, limit=limit))

        for item in await asyncio.to_thread(collect):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async ``put``."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async ``put_writes``."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async ``delete_thread``."""
        await asyncio.to_thread(self.delete_thread, thread_id)
