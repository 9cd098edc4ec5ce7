"""SQLStore: the LangGraph store and file repository shared by the SQLite and PostgreSQL stores.

It plans every operation as SQL steps (``_sql``) and leaves running them to the
engine: ``_execute`` (blocking) and ``_aexecute`` (async) run the steps of one call
in one transaction, in order. While history is on (``retention``), every write and
delete of a file records its revision in the same statement or transaction
(``_revisions``); ``diff`` and ``restore`` come from :class:`~deepmemory.history.HistoryMixin`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import weakref
from collections.abc import Awaitable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from types import TracebackType
from typing import Any, Self, TypeVar, cast

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, GetOp, Op, PutOp, Result, SearchOp, TTLConfig

from deepmemory import clock
from deepmemory.backends.protocol import (
    Author,
    Expiry,
    FileInfo,
    FileUsage,
    GrepMatch,
    LineWindow,
    Namespace,
    RecentResult,
    Revision,
    RevisionOp,
    StoredFile,
    reads_count,
)
from deepmemory.errors import ConfigError
from deepmemory.history import HistoryMixin
from deepmemory.stores._edits import EditGroups
from deepmemory.stores._expiry import (
    discard_files,
    file_space,
    file_usage,
    fold_space,
    is_stale,
    touch_file,
    touching,
    visible_space,
)
from deepmemory.stores._lines import select_lines
from deepmemory.stores._moves import move_tree, purge_expired
from deepmemory.stores._passages import Embed, Found, fuse, index_file, search, unindexed
from deepmemory.stores._recent import changes, fold_deletions, recent_files
from deepmemory.stores._revisions import (
    Retention,
    prune,
    record_delete,
    record_write,
    select_history,
    select_revision,
)
from deepmemory.stores._search import glob_files, grep_files
from deepmemory.stores._sql import (
    Dialect,
    Step,
    delete_tree,
    edit_file_in_place,
    find_dir,
    list_dir,
    plan_op,
    select_file,
    write_file,
    write_file_unless_dir,
)
from deepmemory.stores._ttl import Stopped, Sweeper, SweeperFuture, finished, sweep_expired
from deepmemory.stores._vectors import (
    Embedded,
    Vector,
    VectorIndex,
    replace_vectors,
    vector_search,
)

logger = logging.getLogger("deepmemory")
T = TypeVar("T")

# Newest versions in a change token: as many as the memory map shows files.
MAP_TOKEN_VERSIONS = 40
# PostgreSQL keeps a namespace's byte count in a row per writing transaction (m014);
# past this many, reading the count folds the finished ones into one.
SPACE_FOLD_ROWS = 32


class SQLStore(HistoryMixin, BaseStore):
    """A LangGraph ``BaseStore``, ``SupportsFileQueries`` and ``SupportsHistory`` in SQL steps.

    Subclasses set ``dialect`` and ``retention`` and run steps: ``_execute`` (blocking)
    and ``_aexecute`` (async), each running the steps of one call in one transaction,
    in order.
    """

    dialect: Dialect
    supports_ttl = True  # LangGraph's per-item TTL (``_ttl``)
    ttl_config: TTLConfig | None = None
    # Whether LangGraph reads refresh TTLs only when ``ttl_config`` sets
    # ``refresh_on_read`` (LangGraph's SqliteStore), or whenever the call asks (by
    # default it does: LangGraph's PostgresStore).
    _refresh_needs_config = False
    index: VectorIndex | None = None  # LangGraph's semantic index (``_vectors``)
    _sweeper: Sweeper | None = None
    retention: Retention = Retention()
    strict_loop = False  # refuse blocking calls inside a running event loop
    expiry: Expiry | None = None  # set on views made by with_expiry
    _origin: SQLStore | None = None  # the store a view was made from

    @property
    def keep_revisions(self) -> int | None:
        """Revisions kept per file (``0``: history is off; ``None``: all)."""
        return self.retention.keep_revisions

    @property
    def keep_days(self) -> float | None:
        """Days a revision is kept (``None``: no age limit)."""
        return self.retention.keep_days

    def _execute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        raise NotImplementedError

    def _steps(self, steps: Sequence[Step[Any]]) -> list[Any]:
        # A view (with_expiry) runs on the store it was made from: one pool, one schema check.
        origin = self._origin or self
        if origin.strict_loop:
            _refuse_inside_loop(origin)
        return origin._execute(steps)

    async def _asteps(self, steps: Sequence[Step[Any]]) -> list[Any]:
        return await (self._origin or self)._aexecute(steps)

    async def _aexecute(self, steps: Sequence[Step[Any]]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the store's connections; it cannot be used afterwards."""
        raise NotImplementedError

    def setup(self) -> Ready:
        """Create or update the tables now.

        LangGraph's stores ask for this call; ours also do it on first use. Async code
        may ``await store.setup()``.
        """
        (self._origin or self)._ensure_tables()
        return Ready()

    def _ensure_tables(self) -> None:
        """Bring the schema up to date (engines that defer it override this)."""

    async def aclose(self) -> None:
        """Async ``close`` (the blocking part in a worker thread)."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _plan(
        self, ops: Sequence[Op], embedded: Embedded | None = None
    ) -> tuple[list[Step[Any]], list[int]]:
        """The steps of ``ops`` and where each op's result is among them.

        With a semantic index, ``embedded`` holds the batch's vectors: a put is
        followed by replacing its item's vectors, a search with a query ranks by them.
        """
        steps: list[Step[Any]] = []
        results = []
        epoch = clock.now().timestamp()  # one instant for the batch's TTLs
        origin = self._origin or self
        index = origin.index
        ttl = origin.ttl_config or {}  # read now: it may change
        omit = bool(ttl.get("omit_expired"))
        # As LangGraph's SqliteStore: reads refresh only where the config asks for it.
        no_refresh = self._refresh_needs_config and not ttl.get("refresh_on_read", False)
        for i, op in enumerate(ops):
            if no_refresh and isinstance(op, GetOp | SearchOp) and op.refresh_ttl:
                op = op._replace(refresh_ttl=False)
            query = None if embedded is None else embedded.query_vectors.get(i)
            if index is not None and query is not None and isinstance(op, SearchOp):
                ann = index.dims if origin._ann_ready() else None
                step: Step[Any] = vector_search(
                    self.dialect, op, query, index.distance, epoch, ann, omit
                )
            else:
                step = plan_op(self.dialect, op, epoch, omit)
            if isinstance(op, PutOp):
                # A plain put of a file is a write (or delete), by whoever ``attributed_to``
                # names (unknown outside one).
                kind: RevisionOp = "write" if op.value is not None else "delete"
                step = self._recorded(step, op.key, kind, _PUT_AUTHOR.get())
            results.append(len(steps))
            steps.append(step)
            if embedded is not None and i in embedded.put_vectors:
                vectors = embedded.put_vectors[i]
                steps += replace_vectors(self.dialect, op.namespace, op.key, vectors)  # type: ignore[union-attr]
        return steps, results

    def _recorded(
        self,
        step: Step[T],
        key: str,
        op: RevisionOp,
        author: Author | None = None,
    ) -> Step[T]:
        """``step`` recording its revision, if history is on and ``key`` is a file."""
        if not self.retention.records or not key.startswith("/"):
            return step
        if op == "delete":
            return record_delete(self.dialect, step, author, self.retention)
        return record_write(self.dialect, step, op, author, self.retention)

    def _one(self, step: Step[T]) -> T:
        return cast(T, self._steps([step])[0])

    def _aone(self, step: Step[T]) -> Awaitable[T]:
        # Not a coroutine of its own: the hottest path (every async read and edit)
        # awaits what the engine hands back, one frame fewer per layer.
        return (self._origin or self)._arun(step)

    def _arun(self, step: Step[T]) -> Awaitable[T]:
        """One step's result (engines with a faster path for a lone step override it)."""
        return _first(self._aexecute([step]))

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run LangGraph store operations, in order, in one transaction.

        With ``index=``, the batch's texts are embedded first, in one call (nothing is
        written if the embedder fails).
        """
        ops = list(ops)
        index = (self._origin or self).index
        embedded = None if index is None else index.embed(ops)
        steps, at = self._plan(ops, embedded)
        done = self._steps(steps)
        return [done[i] for i in at]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async ``batch``."""
        ops = list(ops)
        index = (self._origin or self).index
        embedded = None if index is None else await index.aembed(ops)
        steps, at = self._plan(ops, embedded)
        done = await self._asteps(steps)
        return [done[i] for i in at]

    # -- LangGraph's semantic index (``_vectors``) ----------------------------------------

    def _ann_ready(self) -> bool:
        """Whether searches may use an approximate (HNSW) index (PostgreSQL overrides)."""
        return False

    @property
    def index_config(self) -> dict[str, Any] | None:
        """The ``index=`` config this store was opened with (``None``: no semantic index)."""
        index = (self._origin or self).index
        return None if index is None else index.config

    @property
    def embeddings(self) -> Embeddings | None:
        """The embedder of ``index=`` (a LangChain ``Embeddings``), or ``None``."""
        index = (self._origin or self).index
        return None if index is None else index.embeddings

    # -- LangGraph's TTL (``_ttl``) --------------------------------------------------------

    def sweep_ttl(self) -> Swept:
        """Delete the items whose LangGraph TTL has run out; how many.

        The count is an ``int``; async code may also ``await store.sweep_ttl()``, as
        with LangGraph's async stores (the sweep has already run).
        """
        return Swept(self._one(sweep_expired(self.dialect, clock.now().timestamp())))

    async def asweep_ttl(self) -> int:
        """Async ``sweep_ttl``."""
        return await self._aone(sweep_expired(self.dialect, clock.now().timestamp()))

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> SweeperFuture:
        """Sweep expired items in a daemon thread, every ``sweep_interval_minutes``.

        The interval defaults to the ``ttl=`` config's ``sweep_interval_minutes``. The
        thread runs until ``stop_ttl_sweeper()`` or ``close()``. Returns a future done
        when it stops (at once if no interval is set); while one runs, its future.
        Async code may ``await store.start_ttl_sweeper()``, as with LangGraph's async
        stores: the sweeper is the same thread.
        """
        origin = self._origin or self
        minutes = sweep_interval_minutes or (origin.ttl_config or {}).get("sweep_interval_minutes")
        if origin._sweeper is not None and not origin._sweeper.done.done():
            return origin._sweeper.done
        if not minutes:
            return finished()
        origin._sweeper = Sweeper(origin.sweep_ttl, float(minutes))
        return origin._sweeper.done

    def stop_ttl_sweeper(self, timeout: float | None = None) -> Stopped:
        """Stop the sweeper thread; whether it stopped within ``timeout`` seconds.

        The answer is true or false; async code may ``await`` it, and a call from a
        coroutine never blocks its event loop (``_ttl.Stopped``).
        """
        origin = self._origin or self
        sweeper, origin._sweeper = origin._sweeper, None
        return Stopped(True) if sweeper is None else sweeper.stop(timeout)

    # -- expiry (SupportsExpiry): a view of the store that leaves out expired files -------

    def with_expiry(self, expiry: Expiry) -> Self:
        """This store seeing only files used within ``expiry.ttl`` (for one backend call).

        A shallow copy sharing the connections; every file query of it leaves out
        expired files, and its reads record themselves if ``expiry.refresh_on_read``.
        """
        view = copy.copy(self)
        view.expiry = expiry
        view._origin = self._origin or self
        return view

    def _fresh(self) -> str | None:
        return None if self.expiry is None else self.expiry.cutoff()

    def _touch(self, namespace: Namespace, key: str) -> tuple[Step[bool], Step[None]] | None:
        """(is the file's last use stale?, record a read) if this read counts as a use."""
        expiry = self.expiry
        if expiry is None or not expiry.refresh_on_read or not reads_count():
            return None
        now = clock.now()
        stale, fresh = clock.iso(now - expiry.refresh_every), self._fresh()
        return (
            is_stale(self.dialect, namespace, key, stale, fresh),
            touch_file(self.dialect, namespace, key, clock.iso(now), stale, fresh),
        )

    def _read(self, read: Step[T], namespace: Namespace, key: str) -> T:
        touch = self._touch(namespace, key)
        if touch is None:
            return self._one(read)
        if self.dialect == "postgres":  # one statement; no lock unless it writes
            return self._one(touching(read, touch[1]))
        # SQLite: a write would take the database's one write lock: only when stale.
        result = self._one(read)
        if result is not None and self._one(touch[0]):
            self._one(touch[1])
        return result

    def _aread(
        self, read: Step[T], namespace: Namespace, key: str, *, first: bool = False
    ) -> Awaitable[T]:
        touch = self._touch(namespace, key)
        if touch is not None and self.dialect == "postgres":  # as ``_read``: one statement
            read, touch = touching(read, touch[1]), None
        if first:
            read = replace(read, first=True)
        if touch is None:
            return self._aone(read)  # (no coroutine of its own: see ``_aone``)
        return self._aread_touching(read, touch)

    async def _aread_touching(self, read: Step[T], touch: tuple[Step[bool], Step[None]]) -> T:
        result = await self._aone(read)
        if result is not None and await self._aone(touch[0]):
            await self._aone(touch[1])  # SQLite, only when stale (as ``_read``)
        return result

    def file_read_lines(
        self, namespace: Namespace, key: str, offset: int, limit: int
    ) -> LineWindow | None:
        """Lines ``offset .. offset + limit`` of a file, its line count and size; or ``None``.

        With an expiry that refreshes on read, a read (this or ``file_get``) counts as a
        use of the file, unless made inside ``uncounted_reads()``.
        """
        step = select_lines(self.dialect, namespace, key, offset, limit, self._fresh())
        return self._read(step, namespace, key)

    async def afile_read_lines(
        self, namespace: Namespace, key: str, offset: int, limit: int
    ) -> LineWindow | None:
        """Async ``file_read_lines``."""
        step = select_lines(self.dialect, namespace, key, offset, limit, self._fresh())
        return await self._aread(step, namespace, key)

    # -- the memory map (SupportsRecentFiles) -------------------------------------------

    @property
    def identity(self) -> tuple[str, ...]:
        """What names this store's database: equal for two store objects on the same one."""
        raise NotImplementedError

    def file_recent(self, namespace: Namespace, dir_key: str, limit: int) -> RecentResult:
        """The ``limit`` files below ``dir_key`` changed last, and a count (see ``_recent``)."""
        return self._one(recent_files(self.dialect, namespace, dir_key, limit, self._fresh()))

    async def afile_recent(self, namespace: Namespace, dir_key: str, limit: int) -> RecentResult:
        """Async ``file_recent``."""
        step = recent_files(self.dialect, namespace, dir_key, limit, self._fresh())
        return await self._aone(step)

    def _token(self, namespace: Namespace, found: tuple[Any, ...]) -> tuple[Any, ...]:
        # With an expiry, files expire as time passes: the token also moves on every
        # ``refresh_every`` (the same slack a recorded read has).
        expiry = self.expiry
        tick = None
        if expiry is not None and expiry.ttl is not None:
            tick = int(clock.now().timestamp() // expiry.refresh_every.total_seconds())
        return (self.identity, namespace, tick, found)

    def file_changes(self, namespace: Namespace) -> tuple[Any, ...]:
        """A token that differs after any write or delete in ``namespace`` (see ``_recent``)."""
        found = self._one(changes(self.dialect, namespace, MAP_TOKEN_VERSIONS))
        return self._token(namespace, found)

    async def afile_changes(self, namespace: Namespace) -> tuple[Any, ...]:
        """Async ``file_changes``."""
        found = await self._aone(changes(self.dialect, namespace, MAP_TOKEN_VERSIONS))
        return self._token(namespace, found)

    def file_space(
        self, namespace: Namespace, keys: Sequence[str], *, bound: int | None = None
    ) -> tuple[int, dict[str, int]]:
        """Bytes held by the namespace's visible files, and the sizes of ``keys`` present.

        One kept count, whatever the number of files. Where files expire, that count
        includes expired files not yet pruned: it is returned as it is when it is at
        most ``bound`` (a limit it then cannot exceed), else the visible files are summed.
        """
        fresh = self._fresh()
        (stored, rows), sizes = self._steps(file_space(self.dialect, namespace, keys, fresh))
        if self.dialect == "postgres" and rows > SPACE_FOLD_ROWS:
            self._one(fold_space(namespace))
        if fresh is not None and (bound is None or stored > bound):
            stored = self._one(visible_space(self.dialect, namespace, fresh))
        return int(stored), dict(sizes)

    async def afile_space(
        self, namespace: Namespace, keys: Sequence[str], *, bound: int | None = None
    ) -> tuple[int, dict[str, int]]:
        """Async ``file_space``."""
        fresh = self._fresh()
        steps = file_space(self.dialect, namespace, keys, fresh)
        (stored, rows), sizes = await self._asteps(steps)
        if self.dialect == "postgres" and rows > SPACE_FOLD_ROWS:
            await self._aone(fold_space(namespace))
        if fresh is not None and (bound is None or stored > bound):
            stored = await self._aone(visible_space(self.dialect, namespace, fresh))
        return int(stored), dict(sizes)

    def file_usage(self, namespace: Namespace) -> list[FileUsage]:
        """Every file of ``namespace`` with size, last use and version (no content)."""
        return self._one(file_usage(self.dialect, namespace))

    async def afile_usage(self, namespace: Namespace) -> list[FileUsage]:
        """Async ``file_usage``."""
        return await self._aone(file_usage(self.dialect, namespace))

    def _discard(
        self, namespace: Namespace, victims: Sequence[FileUsage], author: Author | None
    ) -> list[Step[list[str]]]:
        steps = discard_files(self.dialect, namespace, victims)
        return [
            self._recorded(s, v.key, "delete", author) for s, v in zip(steps, victims, strict=True)
        ]

    def file_discard(
        self, namespace: Namespace, victims: Sequence[FileUsage], *, author: Author | None = None
    ) -> list[str]:
        """Delete each victim unless its version changed since; the keys deleted."""
        if not victims:
            return []
        return [
            key for keys in self._steps(self._discard(namespace, victims, author)) for key in keys
        ]

    async def afile_discard(
        self, namespace: Namespace, victims: Sequence[FileUsage], *, author: Author | None = None
    ) -> list[str]:
        """Async ``file_discard``."""
        if not victims:
            return []
        done = await self._asteps(self._discard(namespace, victims, author))
        return [key for keys in done for key in keys]

    # -- files (SupportsFileQueries, SupportsInPlaceWrites) ---------------------------

    def file_get(self, namespace: Namespace, key: str) -> StoredFile | None:
        """The file at ``key``, with its version, or ``None`` (a read: see ``_read``)."""
        return self._read(select_file(self.dialect, namespace, key, self._fresh()), namespace, key)

    async def afile_get(
        self, namespace: Namespace, key: str, *, before_write: bool = False
    ) -> StoredFile | None:
        """Async ``file_get``; ``before_write``: the caller writes next (``Step.first``)."""
        step = select_file(self.dialect, namespace, key, self._fresh())
        return await self._aread(step, namespace, key, first=before_write)

    def _put(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        expected_version: int | None,
        author: Author | None,
        op: RevisionOp,
    ) -> Step[int | None]:
        step = write_file(self.dialect, namespace, key, file, expected_version)
        return self._recorded(step, key, op, author)

    def file_put(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        *,
        expected_version: int | None,
        author: Author | None = None,
        op: RevisionOp = "write",
    ) -> int | None:
        """Write ``file``; the new version, or None if ``expected_version`` did not hold.

        With history on, the write records revision ``op`` by ``author`` with it.
        """
        return self._one(self._put(namespace, key, file, expected_version, author, op))

    async def afile_put(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        *,
        expected_version: int | None,
        author: Author | None = None,
        op: RevisionOp = "write",
    ) -> int | None:
        """Async ``file_put``."""
        return await self._aone(self._put(namespace, key, file, expected_version, author, op))

    def _put_many(
        self, namespace: Namespace, files: Sequence[tuple[str, StoredFile]], author: Author | None
    ) -> list[Step[Any]]:
        return [self._put(namespace, key, file, None, author, "write") for key, file in files]

    def _write(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        author: Author | None,
        op: RevisionOp,
    ) -> Step[int | None]:
        step = write_file_unless_dir(self.dialect, namespace, key, file, self._fresh())
        return self._recorded(step, key, op, author)

    def file_write(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        *,
        author: Author | None = None,
        op: RevisionOp = "write",
    ) -> int | None:
        """Create or replace ``file`` in one statement; ``None`` if ``key`` is a directory."""
        return self._one(self._write(namespace, key, file, author, op))

    async def afile_write(
        self,
        namespace: Namespace,
        key: str,
        file: StoredFile,
        *,
        author: Author | None = None,
        op: RevisionOp = "write",
    ) -> int | None:
        """Async ``file_write``."""
        return await self._aone(self._write(namespace, key, file, author, op))

    def _edit(
        self,
        namespace: Namespace,
        key: str,
        edit: tuple[str, str, str],
        author: Author | None,
        op: RevisionOp,
    ) -> Step[int | None]:
        step = edit_file_in_place(self.dialect, namespace, key, edit, self._fresh())
        return self._recorded(step, key, op, author)

    def file_edit(
        self,
        namespace: Namespace,
        key: str,
        old_string: str,
        new_string: str,
        modified_at: str,
        *,
        author: Author | None = None,
        op: RevisionOp = "edit",
    ) -> int | None:
        """Replace the one occurrence of ``old_string`` in one statement; the new version.

        ``None`` (nothing changed) if the file is missing, binary, or does not hold
        ``old_string`` exactly once.
        """
        return self._one(
            self._edit(namespace, key, (old_string, new_string, modified_at), author, op)
        )

    async def afile_edit(
        self,
        namespace: Namespace,
        key: str,
        old_string: str,
        new_string: str,
        modified_at: str,
        *,
        author: Author | None = None,
        op: RevisionOp = "edit",
    ) -> int | None:
        """Async ``file_edit``; concurrent edits of one file share a write (``_edits``)."""
        edit = (old_string, new_string, modified_at)
        return await self._edit_groups().edit(self, namespace, key, edit, author, op)

    def _edit_groups(self) -> EditGroups:
        origin = self._origin or self
        groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EditGroups] | None
        if (groups := origin.__dict__.get("_edit_groups_by_loop")) is None:
            groups = origin.__dict__.setdefault("_edit_groups_by_loop", weakref.WeakKeyDictionary())
        loop = asyncio.get_running_loop()
        if (found := groups.get(loop)) is None:
            found = groups[loop] = EditGroups()
        return found

    def file_put_many(
        self,
        namespace: Namespace,
        files: Sequence[tuple[str, StoredFile]],
        *,
        author: Author | None = None,
    ) -> None:
        """Blind writes of many files (as ``file_put`` without a version) in one transaction."""
        if files:
            self._steps(self._put_many(namespace, files, author))

    async def afile_put_many(
        self,
        namespace: Namespace,
        files: Sequence[tuple[str, StoredFile]],
        *,
        author: Author | None = None,
    ) -> None:
        """Async ``file_put_many``."""
        if files:
            await self._asteps(self._put_many(namespace, files, author))

    def file_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]:
        """Direct children of ``dir_key``, sorted by path; contents are never read."""
        return self._one(list_dir(self.dialect, namespace, dir_key, self._fresh()))

    async def afile_list_dir(self, namespace: Namespace, dir_key: str) -> list[FileInfo]:
        """Async ``file_list_dir``."""
        return await self._aone(list_dir(self.dialect, namespace, dir_key, self._fresh()))

    def file_is_dir(self, namespace: Namespace, dir_key: str) -> bool:
        """Whether any file exists below ``dir_key``."""
        return self._one(find_dir(self.dialect, namespace, dir_key, self._fresh()))

    async def afile_is_dir(self, namespace: Namespace, dir_key: str) -> bool:
        """Async ``file_is_dir``."""
        return await self._aone(find_dir(self.dialect, namespace, dir_key, self._fresh()))

    def file_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]:
        """Files below ``dir_key`` whose ``rel_prefix + relative key`` fully matches ``regex``."""
        step = glob_files(self.dialect, namespace, dir_key, regex, rel_prefix, self._fresh())
        return [] if step is None else self._one(step)

    async def afile_glob(
        self, namespace: Namespace, dir_key: str, regex: str, *, rel_prefix: str = ""
    ) -> list[FileInfo]:
        """Async ``file_glob``."""
        step = glob_files(self.dialect, namespace, dir_key, regex, rel_prefix, self._fresh())
        return [] if step is None else await self._aone(step)

    def file_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]:
        """Lines containing ``literal`` in text files below ``dir_key``, by path then line."""
        fresh = self._fresh()
        step = grep_files(self.dialect, namespace, dir_key, literal, glob_regex, rel_prefix, fresh)
        return [] if step is None else self._one(step)

    async def afile_grep(
        self,
        namespace: Namespace,
        dir_key: str,
        literal: str,
        glob_regex: str | None,
        *,
        rel_prefix: str = "",
    ) -> list[GrepMatch]:
        """Async ``file_grep``."""
        fresh = self._fresh()
        step = grep_files(self.dialect, namespace, dir_key, literal, glob_regex, rel_prefix, fresh)
        return [] if step is None else await self._aone(step)

    def _delete_tree(
        self, namespace: Namespace, key: str, author: Author | None
    ) -> Step[list[str]]:
        step = delete_tree(self.dialect, namespace, key, self._fresh())
        return self._recorded(step, key, "delete", author)

    def file_delete_tree(
        self, namespace: Namespace, key: str, *, author: Author | None = None
    ) -> list[str]:
        """Delete the file at ``key`` and every file below it; return their keys."""
        return self._one(self._delete_tree(namespace, key, author))

    async def afile_delete_tree(
        self, namespace: Namespace, key: str, *, author: Author | None = None
    ) -> list[str]:
        """Async ``file_delete_tree``."""
        return await self._aone(self._delete_tree(namespace, key, author))

    # Errors meaning "that key is taken" (a write racing a move to its destination).
    _TAKEN: tuple[type[Exception], ...] = ()

    def _move_steps(
        self, namespace: Namespace, key: str, new_key: str, author: Author | None
    ) -> list[Step[Any]]:
        fresh = self._fresh()
        steps: list[Step[Any]] = []
        if fresh is not None:  # expired files are not shown, so they are not in the way
            steps.append(purge_expired(self.dialect, namespace, new_key, fresh))
        steps.append(
            move_tree(self.dialect, namespace, key, new_key, fresh, author, self.retention)
        )
        return steps

    def file_move(
        self, namespace: Namespace, key: str, new_key: str, *, author: Author | None = None
    ) -> list[tuple[str, str]] | None:
        """Move the file at ``key`` and every file below it to ``new_key``, in one transaction.

        The (old, new) keys moved; ``[]`` if nothing is there; ``None`` if anything
        exists at or below ``new_key`` (nothing moved).
        """
        try:
            moved: list[tuple[str, str]] = self._steps(
                self._move_steps(namespace, key, new_key, author)
            )[-1]
        except self._TAKEN:
            return None
        if moved:
            return moved
        if self.file_get(namespace, key) is None and not self.file_is_dir(namespace, key):
            return []
        return None

    async def afile_move(
        self, namespace: Namespace, key: str, new_key: str, *, author: Author | None = None
    ) -> list[tuple[str, str]] | None:
        """Async ``file_move``."""
        try:
            moved: list[tuple[str, str]] = (
                await self._asteps(self._move_steps(namespace, key, new_key, author))
            )[-1]
        except self._TAKEN:
            return None
        if moved:
            return moved
        if await self.afile_get(namespace, key) is None and not await self.afile_is_dir(
            namespace, key
        ):
            return []
        return None

    # -- recall by meaning over files (``_passages``) ----------------------------------

    @property
    def recalls(self) -> bool:
        """Whether files can be searched by meaning here (the store has an ``index``)."""
        return (self._origin or self).index is not None

    def _embedder(self) -> VectorIndex:
        index = (self._origin or self).index
        if index is None:
            raise ConfigError(
                "Searching memory by meaning needs an embedder: open the store with "
                "index={'dims': ..., 'embed': ...} (LangGraph's IndexConfig)."
            )
        return index

    def file_index(self, namespace: Namespace, key: str) -> bool:
        """Cut the file at ``key`` into passages and embed the new ones, now.

        False if there was nothing to do (already indexed, or gone). The embedder's
        errors are raised; the file then stays unindexed (see ``file_reindex``).
        """
        index = self._embedder()
        op = index_file(self.dialect, namespace, key)
        try:
            request = next(op)
            while True:
                if isinstance(request, Embed):
                    vectors = index.embeddings.embed_documents(request.texts)
                    answer: Any = [index._checked(v) for v in vectors]
                elif isinstance(request, list):
                    answer = self._steps(request)
                else:
                    answer = self._one(request)
                request = op.send(answer)
        except StopIteration as stop:
            return bool(stop.value)

    async def afile_index(self, namespace: Namespace, key: str) -> bool:
        """Async ``file_index`` (the embedder's async method)."""
        index = self._embedder()
        op = index_file(self.dialect, namespace, key)
        try:
            request = next(op)
            while True:
                if isinstance(request, Embed):
                    vectors = await index.embeddings.aembed_documents(request.texts)
                    answer: Any = [index._checked(v) for v in vectors]
                elif isinstance(request, list):
                    answer = await self._asteps(request)
                else:
                    answer = await self._aone(request)
                request = op.send(answer)
        except StopIteration as stop:
            return bool(stop.value)

    def file_try_index(self, namespace: Namespace, key: str) -> bool:
        """``file_index``, logging instead of raising: a write never fails for its index."""
        try:
            return self.file_index(namespace, key)
        except Exception:
            logger.warning("deepmemory: %r stays unindexed for now", key, exc_info=True)
            return False

    async def afile_try_index(self, namespace: Namespace, key: str) -> bool:
        """Async ``file_try_index``."""
        try:
            return await self.afile_index(namespace, key)
        except Exception:
            logger.warning("deepmemory: %r stays unindexed for now", key, exc_info=True)
            return False

    def file_unindexed(self, namespace: Namespace, dir_key: str = "/") -> list[str]:
        """Text files below ``dir_key`` that searches by meaning leave out until indexed."""
        return self._one(unindexed(self.dialect, namespace, dir_key, self._fresh()))

    async def afile_unindexed(self, namespace: Namespace, dir_key: str = "/") -> list[str]:
        """Async ``file_unindexed``."""
        return await self._aone(unindexed(self.dialect, namespace, dir_key, self._fresh()))

    def file_reindex(self, namespace: Namespace, dir_key: str = "/") -> tuple[int, list[str]]:
        """Index every unindexed file below ``dir_key``: (files indexed, keys that failed)."""
        done, failed = 0, []
        for key in self.file_unindexed(namespace, dir_key):
            try:
                done += self.file_index(namespace, key)
            except Exception:  # the embedder: the file stays unindexed, the others go on
                failed.append(key)
        return done, failed

    async def afile_reindex(
        self, namespace: Namespace, dir_key: str = "/"
    ) -> tuple[int, list[str]]:
        """Async ``file_reindex``."""
        done, failed = 0, []
        for key in await self.afile_unindexed(namespace, dir_key):
            try:
                done += await self.afile_index(namespace, key)
            except Exception:
                failed.append(key)
        return done, failed

    def _passage_steps(
        self, namespace: Namespace, dir_key: str, query: str, vector: Vector
    ) -> list[Step[Any]]:
        index = self._embedder()
        steps: list[Step[Any]] = search(
            self.dialect, namespace, dir_key, query, vector, index.distance, self._fresh()
        )
        return [*steps, unindexed(self.dialect, namespace, dir_key, self._fresh())]

    def file_passages(
        self, namespace: Namespace, dir_key: str, query: str, limit: int
    ) -> tuple[list[Found], list[str]]:
        """The ``limit`` passages below ``dir_key`` closest to ``query``, best first.

        Also the files left out because they are not indexed yet.
        """
        index = self._embedder()
        vector = index._checked(index.embeddings.embed_query(query))
        meaning, words, pending = self._steps(
            self._passage_steps(namespace, dir_key, query, vector)
        )
        return fuse(meaning, words, limit), pending

    async def afile_passages(
        self, namespace: Namespace, dir_key: str, query: str, limit: int
    ) -> tuple[list[Found], list[str]]:
        """Async ``file_passages``."""
        index = self._embedder()
        vector = index._checked(await index.embeddings.aembed_query(query))
        steps = self._passage_steps(namespace, dir_key, query, vector)
        meaning, words, pending = await self._asteps(steps)
        return fuse(meaning, words, limit), pending

    # -- history (SupportsHistory; diff and restore come from HistoryMixin) -------------

    def history(self, namespace: Namespace, key: str) -> list[Revision]:
        """Every recorded revision of the file at ``key``, oldest first.

        Example:
            >>> store.history(("memories", "alice"), "/notes.txt")[-1].op  # doctest: +SKIP
            'edit'
        """
        return self._one(select_history(self.dialect, namespace, key))

    async def ahistory(self, namespace: Namespace, key: str) -> list[Revision]:
        """Async ``history``."""
        return await self._aone(select_history(self.dialect, namespace, key))

    def revision(self, namespace: Namespace, key: str, number: int) -> StoredFile | None:
        """The file as of revision ``number``; ``None`` if there is none or it is a delete."""
        return self._one(select_revision(self.dialect, namespace, key, number))

    async def arevision(self, namespace: Namespace, key: str, number: int) -> StoredFile | None:
        """Async ``revision``."""
        return await self._aone(select_revision(self.dialect, namespace, key, number))

    def prune_history(self) -> int:
        """Delete every revision past ``keep_revisions``/``keep_days``; return how many.

        Writes already prune the written file; this catches files no longer written
        (run it from a scheduled job). With history off (``keep_revisions=0``) it
        deletes all recorded revisions. On PostgreSQL it also folds the per-transaction
        delete counts of the change tokens (``_recent.fold_deletions``) and byte counts
        of the size limits (``_expiry.fold_space``).
        """
        if self.dialect == "postgres":
            self._one(fold_deletions())
            self._one(fold_space())
        step = prune(self.dialect, self.retention)
        return 0 if step is None else self._one(step)

    async def aprune_history(self) -> int:
        """Async ``prune_history``."""
        if self.dialect == "postgres":
            await self._aone(fold_deletions())
            await self._aone(fold_space())
        step = prune(self.dialect, self.retention)
        return 0 if step is None else await self._aone(step)


async def _first(results: Awaitable[list[Any]]) -> Any:
    return (await results)[0]


# Who makes the LangGraph puts of this context (``attributed_to``).
_PUT_AUTHOR: ContextVar[Author | None] = ContextVar("deepmemory_put_author", default=None)


def _refuse_inside_loop(store: SQLStore) -> None:
    """``strict_loop``: a blocking call on a thread whose event loop runs is an error."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop running here: blocking is fine
    name = type(store).__name__
    raise asyncio.InvalidStateError(
        f"A blocking {name} call was made inside a running event loop, where it would "
        "stop every other task until the database answers (this store was opened with "
        "strict_loop=True). Await the async method instead (aget, aput, asearch, "
        "abatch, afile_...), or run the call in a thread with asyncio.to_thread()."
    )


@contextmanager
def attributed_to(author: Author | None) -> Iterator[None]:
    """Record the files that ``put``/``batch`` calls in this block write as ``author``'s.

    For code that writes through LangGraph's API on behalf of a run (an integration
    whose harness speaks ``BaseStore``): history then names the thread, as for our own
    file tools. Context-local, so concurrent tasks and threads each keep their own.
    """
    token = _PUT_AUTHOR.set(author)
    try:
        yield
    finally:
        _PUT_AUTHOR.reset(token)


class Swept(int):
    """``sweep_ttl()``'s answer: how many items it deleted, and ``await``-able to that."""

    def __await__(self) -> Generator[Any, None, int]:
        return self._value().__await__()

    async def _value(self) -> int:
        return int(self)


class Ready:
    """``setup()``'s answer: nothing to wait for, and ``await``-able to ``None``."""

    def __await__(self) -> Iterator[None]:
        return iter(())
