"""PostgresStore: a LangGraph store and a file repository in PostgreSQL.

Tables live in one schema (``public`` unless ``schema=`` says otherwise; see
``migrations``), created on first use. Through :meth:`PostgresStore.checkpointer`
LangGraph's checkpoint tables live in the same schema, so memories and thread state
survive a restart together.

Invariants:

* **One class for both modes.** Blocking calls use a ``psycopg_pool.ConnectionPool``;
  async calls an ``AsyncConnectionPool``. Both are created lazily, the async one per
  event loop (psycopg binds it to the loop that opened it), so a store built outside
  any loop works in ``ainvoke`` and across ``asyncio.run`` calls.
* **Autocommit connections.** A call that runs several statements (a ``batch``) runs
  them in one explicit transaction; a single statement is its own transaction.
  Compare-and-swap is one ``UPDATE ... WHERE version = %s`` (or ``INSERT ... ON
  CONFLICT DO NOTHING``), which READ COMMITTED re-checks against the latest row, so
  concurrent edits from many processes never lose an update.
* **NUL.** PostgreSQL text cannot hold U+0000: a text file containing it is stored as
  binary (base64), byte-exact.
* **History in the write's statement.** A file's write or delete records its revision
  in the same statement (a data-modifying CTE, see ``_revisions``): no extra round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.base import IndexConfig, TTLConfig
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from deepmemory.errors import ConfigError, DeepMemoryError
from deepmemory.stores._base import SQLStore
from deepmemory.stores._coalesce import RETRIED, RETRIES, Coalescer, backoff, run_one
from deepmemory.stores._revisions import DEFAULT_KEEP_REVISIONS, Retention
from deepmemory.stores._sql import Dialect, Step
from deepmemory.stores._vectors import ANN_CANDIDATES, VectorIndex, enable_ann
from deepmemory.stores.migrations import migrate_postgres, postgres_search_path

T = TypeVar("T")

# Seconds to wait for a connection from the pool before raising ``PoolBusyError``.
POOL_TIMEOUT = 30.0


class PoolBusyError(DeepMemoryError, PoolTimeout):
    """Every connection of a ``PostgresStore`` stayed busy for ``POOL_TIMEOUT`` seconds.

    A ``psycopg_pool.PoolTimeout`` too, for code that catches that.
    """


def _busy(store: PostgresStore) -> PoolBusyError:
    return PoolBusyError(
        f"No free PostgreSQL connection after {POOL_TIMEOUT:g} s: all "
        f"{store.max_connections} connections of this PostgresStore stayed busy. Give it "
        "more (PostgresStore(..., max_connections=N)) or run fewer calls at once: async "
        "calls on one event loop share connections, but each thread holds one while "
        "its call runs."
    )


# Planner statistics after bulk loads (m008): once batches have written this many rows,
# the table is analyzed if it never was, or if they are a tenth of its rows or more.
# Without statistics a search can ignore its index (grep 20-40x slower after a load).
ANALYZE_AFTER = 1000
_ESTIMATE = "SELECT reltuples FROM pg_class WHERE oid = 'deepmemory_items'::regclass"


class PostgresStore(SQLStore):
    """Long-term memory in PostgreSQL, for LangGraph and deepmemory's file tools.

    Example:
        >>> import os
        >>> store = PostgresStore(connection_string=os.environ["DATABASE_URL"])  # doctest: +SKIP
        >>> store.put(("users", "alice"), "/prefs.txt", {"content": "dark mode"})  # doctest: +SKIP
    """

    dialect: Dialect = "postgres"
    _TAKEN = (psycopg.errors.UniqueViolation,)

    def __init__(
        self,
        connection_string: str,
        *,
        schema: str = "public",
        max_connections: int = 10,
        keep_revisions: int | None = DEFAULT_KEEP_REVISIONS,
        keep_days: float | None = None,
        ttl: TTLConfig | None = None,
        index: IndexConfig | None = None,
        ann: bool = True,
        strict_loop: bool = False,
    ) -> None:
        """Configure the store; nothing connects until the first call.

        Args:
            connection_string: A libpq URL or ``key=value`` string.
            schema: Schema holding the tables (created if missing).
            max_connections: Size limit of each connection pool (at least 2).
            keep_revisions: History retention per file, as for ``SQLiteStore``.
            keep_days: History retention in days, as for ``SQLiteStore``.
            ttl: LangGraph's TTL config, as for ``SQLiteStore``.
            index: LangGraph's semantic index, as for ``SQLiteStore``.
            ann: With ``index``, on a server with pgvector: an HNSW index and
                approximate search (``_vectors``). ``False``: always exact.
            strict_loop: Refuse blocking calls made inside a running event loop, as
                for ``SQLiteStore``.
        """
        self.retention = Retention(keep_revisions, keep_days)
        self.strict_loop = strict_loop
        self.ttl_config = ttl
        self.index = None if index is None else VectorIndex(index)
        # Approximate search through pgvector's HNSW, where the server has it (None:
        # not yet looked; ``ann=False`` keeps every search exact).
        self.ann: bool | None = None if ann else False
        if not isinstance(connection_string, str) or not connection_string:
            raise ConfigError(
                "PostgresStore needs a connection string such as "
                "'postgresql://user@localhost:5432/app' (for example os.environ['DATABASE_URL'])."
            )
        if not schema:
            raise ConfigError("PostgresStore(schema=...) must be a non-empty schema name.")
        if max_connections < 2:
            raise ConfigError(f"PostgresStore needs max_connections >= 2, got {max_connections}.")
        self.connection_string = connection_string
        self.schema = schema
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._migrated = False
        self._closed = False
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        # One async pool per event loop; pools of closed loops are discarded on next use.
        self._apools: dict[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool[Any]]] = {}
        # Each open async pool's guard (``_close_when_loop_ends``) and the thread that
        # ran its loop then, by loop.
        self._guards: dict[asyncio.AbstractEventLoop, tuple[asyncio.Task[None], int]] = {}
        self._saver: PostgresCheckpointer | None = None
        self._coalescers: dict[asyncio.AbstractEventLoop, Coalescer] = {}
        self._written = 0  # rows written by batches since this store last analyzed

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"  # Never the URL: it may hold a password.

    @property
    def identity(self) -> tuple[str, ...]:
        """The server, database and schema naming this store's data."""
        return ("postgres", self.connection_string, self.schema)

    # -- connections ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise DeepMemoryError(f"{self!r} is closed; create a new store to use it again.")

    def _ensure_tables(self) -> None:
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        with self._lock:
            self._check_open()
            if self._migrated:
                return
            user = "<this user>"
            try:
                with psycopg.connect(self.connection_string, autocommit=True) as conn:
                    user = conn.info.user
                    migrate_postgres(conn, schema=self.schema)
                    if self.index is not None and self.ann is not False:
                        conn.execute(postgres_search_path(self.schema))
                        self.ann = enable_ann(conn, self.index.dims, self.index.distance)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise ConfigError(_privilege_advice(self.schema, user, exc)) from exc
            self._migrated = True

    def _ann_ready(self) -> bool:
        # Known once the schema is checked (the first call): a search before that is exact.
        return bool(self.ann)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(postgres_search_path(self.schema))
        if self.ann:  # an HNSW scan returns at most ef_search rows
            conn.execute(f"SET hnsw.ef_search = {ANN_CANDIDATES}")

    async def _aconfigure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(postgres_search_path(self.schema))
        if self.ann:
            await conn.execute(f"SET hnsw.ef_search = {ANN_CANDIDATES}")

    def _pool_options(self) -> dict[str, Any]:
        return {
            "conninfo": self.connection_string,
            "min_size": 1,
            "max_size": self.max_connections,
            # psycopg prepares a statement from its 5th run and PostgreSQL then reuses a
            # generic plan: right for writes and lookups. Searches opt out per step
            # (`Step.custom_plan`, run unprepared).
            "kwargs": {"autocommit": True},
            "timeout": POOL_TIMEOUT,
        }

    def _sync_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is None or not self._migrated:
            self._ensure_schema()
            with self._lock:
                self._check_open()
                if self._pool is None:
                    self._pool = ConnectionPool(
                        configure=self._configure, open=True, **self._pool_options()
                    )
        return self._pool

    async def _open_async_pool(self) -> AsyncConnectionPool[Any]:
        if not self._migrated:
            await asyncio.to_thread(self._ensure_schema)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            configure=self._aconfigure, open=False, name=ASYNC_POOL_NAME, **self._pool_options()
        )
        try:
            await pool.open(wait=True, timeout=POOL_TIMEOUT)
        except BaseException:  # failed, or cancelled as the loop ends: stop its workers
            await _close_pool(pool)
            raise
        if self._closed:  # close() ran while this pool opened: it is not handed out
            await _close_pool(pool)
            self._check_open()
        loop = asyncio.get_running_loop()
        guard = loop.create_task(_close_when_loop_ends(pool))
        self._guards[loop] = (guard, threading.get_ident())
        return pool

    async def _async_pool(self) -> AsyncConnectionPool[Any]:
        self._check_open()
        loop = asyncio.get_running_loop()
        for old in list(self._apools):  # A copy: other threads may run other loops.
            if old.is_closed() and (stale := self._apools.pop(old, None)) is not None:
                self._guards.pop(old, None)
                _discard(stale)
        task = self._apools.get(loop)
        if task is None or (task.done() and ((opened := _opened(task)) is None or opened.closed)):
            # (Closed: its guard closed it when every task of the loop was cancelled.)
            # One opening per loop, shared by every coroutine that asks meanwhile.
            task = loop.create_task(self._open_async_pool())
            self._apools[loop] = task
        return await asyncio.shield(task)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._sync_pool()
        try:
            conn = pool.getconn()
        except PoolTimeout as exc:
            raise _busy(self) from exc
        try:
            yield conn
        finally:
            pool.putconn(conn)

    def _execute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        with self._connection() as conn:
            for attempt in range(RETRIES + 1):
                try:
                    if len(steps) == 1:
                        return [_run(conn, steps[0])]
                    with conn.transaction():
                        results = [_run(conn, step) for step in steps]
                    break
                except RETRIED:  # a deadlock's victim, rolled back: again (``_coalesce``)
                    if attempt == RETRIES:
                        raise
                    time.sleep(backoff(attempt))
            if (written := self._loaded(steps)) and _stale(written, conn.execute(_ESTIMATE)):
                conn.execute("ANALYZE deepmemory_items")
                self._analyzed(written)
            return results

    def _loaded(self, steps: Sequence[Step[Any]]) -> int:
        """Count a batch's writes: all since the last statistics, once ``ANALYZE_AFTER``."""
        with self._lock:
            self._written += sum(step.write for step in steps)
            return self._written if self._written >= ANALYZE_AFTER else 0

    def _analyzed(self, written: int) -> None:
        with self._lock:
            self._written = max(0, self._written - written)

    def _arun(self, step: Step[T]) -> Awaitable[T]:
        if step.custom_plan:
            return super()._arun(step)
        # With whatever else this loop is running (``_coalesce``); a search, whose time
        # grows with the memory, runs on a connection of its own (``_aexecute``).
        self._check_open()
        return self._coalescer().submit(step)

    async def _aexecute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        self._check_open()  # a runner may hold a connection past close()
        if len(steps) == 1 and not steps[0].custom_plan:
            return [await self._arun(steps[0])]
        async with self._aconnection() as conn:
            for attempt in range(RETRIES + 1):
                try:
                    if len(steps) == 1:
                        return [await run_one(conn, steps[0])]
                    async with conn.transaction():
                        results = [await run_one(conn, step) for step in steps]
                    break
                except RETRIED:  # a deadlock's victim, rolled back: again (``_coalesce``)
                    if attempt == RETRIES:
                        raise
                    await asyncio.sleep(backoff(attempt))
            if (written := self._loaded(steps)) and _stale(
                written, await (await conn.execute(_ESTIMATE)).fetchone()
            ):
                await conn.execute("ANALYZE deepmemory_items")
                self._analyzed(written)
            return results

    @contextlib.asynccontextmanager
    async def _aconnection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = await self._async_pool()
        try:
            conn = await pool.getconn()
        except PoolTimeout as exc:
            raise _busy(self) from exc
        try:
            yield conn
        finally:
            await pool.putconn(conn)

    def _coalescer(self) -> Coalescer:
        loop = asyncio.get_running_loop()
        coalescer = self._coalescers.get(loop)
        if coalescer is None:
            for old in [old for old in self._coalescers if old.is_closed()]:
                self._coalescers.pop(old, None)
            coalescer = self._coalescers[loop] = Coalescer(self._aconnection, self.max_connections)
        return coalescer

    # -- checkpointer and lifetime ----------------------------------------------------

    def checkpointer(self) -> PostgresCheckpointer:
        """LangGraph's checkpointer on this database and schema, for ``invoke`` and ``ainvoke``.

        Its tables are created (``setup()``) on the first call; the same object is
        returned on every call.

        Example:
            >>> saver = store.checkpointer()  # doctest: +SKIP
        """
        pool = self._sync_pool()
        with self._lock:
            if self._saver is None:
                saver = PostgresCheckpointer(self, pool)
                # setup() cannot run in a transaction (CREATE INDEX CONCURRENTLY): serialise
                # concurrent starters with a session-level advisory lock instead.
                with pool.connection() as conn:
                    key = f"deepmemory-checkpoints:{self.schema}"
                    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
                    try:
                        saver.setup()
                    finally:
                        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
                self._saver = saver
            return self._saver

    def close(self) -> None:
        """Close the connection pools (async pools whose loop is still usable, too)."""
        self.stop_ttl_sweeper()
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            tasks = list(self._apools.items())
            self._apools.clear()
            guards, self._guards = self._guards, {}
        if pool is not None:
            pool.close()
        for loop, task in tasks:
            guard, thread = guards.get(loop, (None, None))
            if guard is None or loop.is_closed():
                _discard(task)  # (a pool still opening sees the store closed)
                continue
            if thread == threading.get_ident() and not loop.is_running():
                # This thread's loop, idle (sync code between run_until_complete calls):
                # the guard closes the pool now, unless another loop runs here.
                guard.cancel()
                closing = asyncio.wait([guard])
                try:
                    loop.run_until_complete(closing)
                    continue
                except RuntimeError:
                    closing.close()
            # Another thread's loop (running, or between two calls: never run it here):
            # the guard closes the pool when the loop runs again; idle connections now.
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(guard.cancel)
            if not loop.is_running():
                _discard(task)

    async def aclose(self) -> None:
        """Close the pools, awaiting this event loop's async pool."""
        loop = asyncio.get_running_loop()
        self._apools.pop(loop, None)  # (one still opening sees the store closed)
        guard, _ = self._guards.pop(loop, (None, None))  # every opened pool has one
        if guard is not None:
            guard.cancel()
            await asyncio.wait([guard])
        await asyncio.to_thread(self.close)


def _privilege_advice(schema: str, user: str, exc: Exception) -> str:
    """What to do when the user may not create the store's schema, tables or extension."""
    from psycopg import sql

    quoted = sql.Identifier(schema).as_string()
    owner = sql.Identifier(user).as_string()
    return (
        f"PostgresStore could not set up its tables in schema {schema!r} as user {user!r}: "
        f"{str(exc).strip()}. Either grant that user CREATE on the database (it then "
        "creates the schema and the pg_trgm extension itself), or have an administrator "
        f"run once: CREATE SCHEMA {quoted} AUTHORIZATION {owner}; "
        "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;"
    )


def _stale(written: int, estimate: Any) -> bool:
    """Whether ``written`` new rows call for fresh statistics (``estimate``: reltuples)."""
    if hasattr(estimate, "fetchone"):
        estimate = estimate.fetchone()
    rows = -1.0 if estimate is None else float(estimate[0])
    return rows < 0 or written >= 0.1 * rows  # never analyzed, or a tenth is new


def _opened(task: asyncio.Task[AsyncConnectionPool[Any]]) -> AsyncConnectionPool[Any] | None:
    """The pool a finished opening task produced, or None (still opening, failed, cancelled)."""
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


ASYNC_POOL_NAME = "deepmemory-async"


class _QuietShutdownConnects(logging.Filter):
    """No "error connecting" warning from psycopg_pool for our async pools' cancelled connects.

    A connect is cancelled when the event loop ends while the pool grows: not an error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            record.msg == "error connecting in %r: %s"
            and len(args) == 2
            and args[0] == ASYNC_POOL_NAME
            and isinstance(args[1], asyncio.CancelledError)
        )


logging.getLogger("psycopg.pool").addFilter(_QuietShutdownConnects())


async def _close_when_loop_ends(pool: AsyncConnectionPool[Any]) -> None:
    """Wait until the event loop shuts down, then close ``pool`` properly.

    ``asyncio.run()`` ends by cancelling every task left, the pool's workers included.
    A worker that is making a connection when cancelled (the pool grows under load)
    swallows the cancellation and waits for its next job forever, so ``asyncio.run()``
    never returned. Cancelled with them, this closes the pool, which stops every worker.
    ``close()`` and ``aclose()`` cancel it too.
    """
    try:
        await asyncio.get_running_loop().create_future()  # never set: only cancelled
    except asyncio.CancelledError:  # (not on GeneratorExit: a loop gone, nothing to run)
        await _close_pool(pool)
        raise


async def _close_pool(pool: AsyncConnectionPool[Any]) -> None:
    """``pool.close()``, and its idle connections closed even when that is cut short.

    Its workers, cancelled with every task of an ending loop, end ``close()`` with their
    ``CancelledError`` before it closes the connections it took out of the pool.
    """
    idle = _idle(pool)
    try:
        await pool.close()
    finally:
        _finish(idle)


def _idle(pool: AsyncConnectionPool[Any]) -> list[psycopg.AsyncConnection[Any]]:
    return list(getattr(pool, "_pool", ()))  # psycopg_pool's idle connections


def _finish(conns: list[psycopg.AsyncConnection[Any]]) -> None:
    """Close the sockets of ``conns`` without their event loop."""
    for conn in conns:
        if not conn.closed:
            conn.pgconn.finish()


def _discard(task: asyncio.Task[AsyncConnectionPool[Any]]) -> None:
    """Free the connections of an async pool whose event loop is closed.

    ``pool.close()`` needs that loop, so close the sockets directly rather than
    leaving them open until garbage collection.
    """
    if (apool := _opened(task)) is not None:
        _finish(_idle(apool))


def _run(conn: psycopg.Connection[Any], step: Step[Any]) -> Any:
    sql, params = step.query
    cur = conn.execute(sql, params, prepare=False if step.custom_plan else None)
    return step.finish(cur.fetchall() if cur.description is not None else [])


class PostgresCheckpointer(PostgresSaver):
    """LangGraph's ``PostgresSaver`` on the store's pool that also serves ``ainvoke``.

    Sync methods are ``PostgresSaver``'s; async ones delegate to an
    ``AsyncPostgresSaver`` on the store's async pool for the running event loop.
    """

    def __init__(self, store: PostgresStore, pool: ConnectionPool[psycopg.Connection[Any]]):
        """Wrap ``store``'s blocking pool; the async saver is made per event loop."""
        # The saver sets dict rows per cursor and needs only autocommit connections.
        super().__init__(pool)
        self._store = store
        self._async: dict[asyncio.AbstractEventLoop, AsyncPostgresSaver] = {}

    async def _aio(self) -> AsyncPostgresSaver:
        loop = asyncio.get_running_loop()
        for old in list(self._async):
            if old.is_closed():
                self._async.pop(old, None)  # Its pool is discarded by the store.
        saver = self._async.get(loop)
        if saver is None or saver.conn.closed:  # (the store replaces a closed pool)
            saver = AsyncPostgresSaver(await self._store._async_pool(), serde=self.serde)
            self._async[loop] = saver
        return saver

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async ``get_tuple``."""
        return await (await self._aio()).aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async ``list``."""
        saver = await self._aio()
        async for item in saver.alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async ``put``."""
        return await (await self._aio()).aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async ``put_writes``."""
        await (await self._aio()).aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async ``delete_thread``."""
        await (await self._aio()).adelete_thread(thread_id)
