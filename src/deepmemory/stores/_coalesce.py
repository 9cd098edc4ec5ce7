"""Concurrent async calls on one event loop, run together on PostgreSQL.

Each async call that is one statement (a file read, an in-place edit, a LangGraph
``aget`` or ``aput``; searches run on their own) joins its loop's queue. A runner
takes a pooled connection and runs what is queued, ``BATCH`` calls at a time: the
reads in one round trip (identical ones run once, reads of different files as one
statement), then the writes in another, in key order (so two runners lock rows in the
same order); each round trip's statements are one transaction. More runners
start, up to ``max_connections``, while more than a batch per runner is waiting.

What a caller sees does not change:

* A write's result is handed out only after its transaction commits, so nobody acts
  on a change a rollback could undo.
* Compare-and-swap is untouched: every write statement keeps its own version check
  (or in-place ``UPDATE``), and inside one transaction each sees the ones before it,
  exactly as if they had run one after another.
* If anything in a batch fails (a constraint, a deadlock, a lost connection), the
  batch rolls back and each of its statements runs again on its own, so every caller
  gets its own result or its own error.

A lone call still costs one round trip, on a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import psycopg.errors

from deepmemory.stores._sql import Row, Step

T = TypeVar("T")

# Calls a runner takes at once: large enough to amortise a round trip, small enough
# that one slow batch does not hold many callers.
BATCH = 128
# Writes per transaction before a batch's writes spread over more connections (the
# server writes different files in parallel; each write rewrites a file's indexes).
WRITE_CHUNK = 32

Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


@dataclass(slots=True)
class _Job:
    """One statement to run, and every call waiting for its rows."""

    step: Step[Any]
    callers: list[tuple[Step[Any], asyncio.Future[Any]]]
    same: Any = None  # the key of a read merged with identical ones (``_same``)


def _deliver(job: _Job, rows: list[Row], first: bool) -> int:
    """The result of each caller whose ``step.first`` is ``first``; how many.

    Callers holding the same step (identical reads share one: ``_lines``) share its
    result, worked out once: a step's ``finish`` is pure and its result is not changed
    by those who receive it.
    """
    count = 0
    shared: Step[Any] | None = None
    result: Any = None
    for step, future in job.callers:
        if future.done() or step.first != first:
            continue  # cancelled, or not in this pass
        count += 1
        if step is not shared:
            try:
                result = step.finish(rows)
            except Exception as exc:  # a finish that rejects its rows fails only its call
                future.set_exception(exc)
                continue
            shared = step
        future.set_result(result)
    return count


def _deliver_all(done: Sequence[tuple[_Job, list[Row]]], first: bool) -> int:
    return sum(_deliver(job, rows, first) for job, rows in done)


async def _hand_out(done: Sequence[tuple[_Job, list[Row]]]) -> None:
    """Results to their callers: first those who write next, then the others.

    The first ones (``Step.first``, an edit group's read) send their writes to the
    queue in one step of the loop; the others get theirs in the step after, while this
    runner sends those writes (results worked out and callers resumed meanwhile).
    """
    if _deliver_all(done, first=True):
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(_deliver_all, done, False)
    else:
        _deliver_all(done, first=False)


def _fail(job: _Job, exc: BaseException) -> None:
    for _, future in job.callers:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)


def _same(step: Step[Any]) -> Any:
    """What makes two reads the same query, whose rows each call finishes its own way."""
    key = step.same
    if key is None:
        sql, params = step.query
        try:
            key = (sql, *sorted(params.items()))
            hash(key)
        except TypeError:  # an unhashable or unorderable parameter: never merged
            key = _NEVER
        object.__setattr__(step, "same", key)  # a memo: the step is otherwise unchanged
    return None if key is _NEVER else key


_NEVER = object()


@dataclass(slots=True)
class _Unit:
    """One statement sent: a job's own, or one answering several jobs' reads."""

    step: Step[Any]
    jobs: list[_Job]  # more than one: a merged statement, each row led by its job's ordinal

    def rows(self, rows: list[Row]) -> list[tuple[_Job, list[Row]]]:
        if len(self.jobs) == 1:
            return [(self.jobs[0], rows)]
        by_job: list[list[Row]] = [[] for _ in self.jobs]
        for row in rows:  # (ordinality, *the read's own columns)
            by_job[row[0] - 1].append(row[1:])
        return list(zip(self.jobs, by_job, strict=True))


def _units(jobs: list[_Job], writes: bool) -> list[_Unit]:
    """The statements that answer ``jobs``: steps that can (``Step.merge``) run together.

    Reads differing only in their ``Merge.by`` parameters become ``SELECT ... FROM
    unnest(the parameters' arrays) WITH ORDINALITY CROSS JOIN LATERAL (the read, each
    parameter taken from its row)``; writes with a many-row statement (a compare-and-
    swap) run it, once per group, where the group's first write stood. A file written
    twice in one batch keeps its writes apart, in order.
    """
    written = Counter(_lock_order(job) for job in jobs) if writes else Counter()
    slots: list[_Unit | list[_Job]] = []
    groups: dict[Any, list[_Job]] = {}
    for job in jobs:
        merge = job.step.merge
        if merge is None or (writes and (merge.sql is None or written[_lock_order(job)] > 1)):
            slots.append(_Unit(job.step, [job]))
            continue
        sql, params = job.step.query
        try:
            group = (sql, merge, *sorted((k, v) for k, v in params.items() if k not in merge.by))
            hash(group)
        except TypeError:  # an unhashable or unorderable parameter: on its own
            slots.append(_Unit(job.step, [job]))
            continue
        if group not in groups:
            groups[group] = []
            slots.append(groups[group])
        groups[group].append(job)
    return [slot if isinstance(slot, _Unit) else _merged(slot) for slot in slots]


def _merged(jobs: list[_Job]) -> _Unit:
    first = jobs[0].step
    if len(jobs) == 1:
        return _Unit(first, jobs)
    assert first.merge is not None
    sql, params = first.query
    by = first.merge.by
    merged = {k: v for k, v in params.items() if k not in by}
    for name in by:
        values = (job.step.query[1][name] for job in jobs)
        merged[f"_{name}"] = [None if v is None else str(v) for v in values]
    if first.merge.sql is not None:
        sql = first.merge.sql
    else:
        for name in by:
            sql = sql.replace(f"%({name})s", f"_q._{name}")
        arrays = ", ".join(f"CAST(%(_{name})b AS text[])" for name in by)  # binary: see _sql
        columns = ", ".join(f"_{name}" for name in by)
        sql = (
            f"SELECT _q._i, _s.* FROM unnest({arrays}) WITH ORDINALITY AS _q({columns}, _i) "
            f"CROSS JOIN LATERAL ({sql}) AS _s"
        )
    return _Unit(Step((sql, merged), _no_finish, first.write), jobs)


def _no_finish(rows: list[Row]) -> None:
    raise AssertionError("a merged read's rows go to its jobs")  # pragma: no cover


def _lock_order(job: _Job) -> tuple[str, str]:
    params = job.step.query[1]
    return str(params.get("ns", "")), str(params.get("key", ""))


async def _rows(conn: psycopg.AsyncConnection[Any], step: Step[Any]) -> list[Row]:
    sql, params = step.query
    cur = await conn.execute(sql, params, prepare=False if step.custom_plan else None)
    return await cur.fetchall() if cur.description is not None else []


async def run_one(conn: psycopg.AsyncConnection[Any], step: Step[Any]) -> Any:
    """One statement, its own transaction (autocommit): the step's result."""
    return step.finish(await _rows(conn, step))


async def _pipelined(
    conn: psycopg.AsyncConnection[Any], steps: Sequence[Step[Any]]
) -> list[list[Row]]:
    """Rows of each step, sent in one round trip, as one transaction.

    The connection is in autocommit mode, so the statements up to the pipeline's one
    Sync are one implicit transaction: all commit at the Sync, or, if one fails, none
    does and the rest are skipped. (An explicit ``transaction()`` would cost a second
    round trip: psycopg waits for the ``COMMIT``'s answer before the pipeline's end.)
    """
    try:
        async with conn.pipeline():
            cursors = []
            for step in steps:
                sql, params = step.query
                prepare = False if step.custom_plan else None
                cursors.append(await conn.execute(sql, params, prepare=prepare))
    except psycopg.Error:
        await _forget_prepared(conn)
        raise
    return [await cur.fetchall() if cur.description is not None else [] for cur in cursors]


async def _forget_prepared(conn: psycopg.AsyncConnection[Any]) -> None:
    """After a failed pipeline: no prepared statement on either side.

    psycopg records a statement due for preparing as prepared when it sends it, so one
    skipped after the failing statement stays recorded though the server never saw it,
    and every later use would fail (``InvalidSqlStatementName``). A rolled-back
    transaction makes psycopg forget every prepared statement, here and on the server.
    """
    with contextlib.suppress(psycopg.Error):  # a broken connection: the pool replaces it
        async with conn.transaction(force_rollback=True):
            pass


# A statement the server chose as a deadlock's victim had no effect: run it again.
RETRIED = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
RETRIES = 5


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (from 0): doubling, random on each side."""
    return random.uniform(0.001, 0.01) * (1 << attempt)


async def _alone(conn: psycopg.AsyncConnection[Any], job: _Job) -> None:
    for attempt in range(RETRIES + 1):
        try:
            rows = await _rows(conn, job.step)
        except RETRIED as exc:
            # Two transactions each waiting for the other (writes of one namespace
            # also update its deletion counter, ``_recent``): the server rolled this
            # one back. Again, after a pause that differs between the two.
            if attempt == RETRIES:
                _fail(job, exc)
                return
            await asyncio.sleep(backoff(attempt))
        except Exception as exc:
            _fail(job, exc)
            return
        else:
            await _hand_out([(job, rows)])
            return


async def _together(conn: psycopg.AsyncConnection[Any], jobs: list[_Job], writes: bool) -> None:
    if len(jobs) == 1:
        await _alone(conn, jobs[0])
        return
    units = _units(sorted(jobs, key=_lock_order) if writes else jobs, writes)
    try:
        results = await _pipelined(conn, [unit.step for unit in units])
    except psycopg.Error:
        # Rolled back: each statement again on its own, for its own result or error.
        for job in jobs:
            await _alone(conn, job)
        return
    await _hand_out(
        [pair for unit, rows in zip(units, results, strict=True) for pair in unit.rows(rows)]
    )


class Coalescer:
    """The queue of one event loop's single-statement calls, and its runners."""

    def __init__(self, connect: Connect, runners: int) -> None:
        self._connect = connect
        self._max_runners = runners
        self._runners = 0
        # Connections this queue holds: runners' and their write chunks'. A chunk takes
        # only one nobody here holds, so a runner never waits for a connection that
        # another runner, itself waiting, holds (the pool would time out).
        self._held = 0
        self._queue: deque[_Job] = deque()
        # Reads waiting to be sent, by query: an identical read joins them. Never one
        # already sent: a call must see every write that finished before it began.
        self._queued_reads: dict[Any, _Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while running

    def submit(self, step: Step[T]) -> asyncio.Future[T]:
        """Queue ``step`` to run with whatever else is queued; its result as if run alone."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        same = None if step.write else _same(step)
        queued = None if same is None else self._queued_reads.get(same)
        if queued is not None:
            queued.callers.append((step, future))
        else:
            job = _Job(step, [(step, future)], same)
            self._queue.append(job)
            if same is not None:
                self._queued_reads[same] = job
            self._start()
        return future

    def _start(self) -> None:
        # A runner more only for work the running ones cannot take in their next batch:
        # light load stays on one connection (and leaves none half-opened behind).
        waiting = len(self._queue)
        if waiting > BATCH * self._runners and self._runners < self._max_runners:
            self._runners += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Job]:
        jobs = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
        for job in jobs:
            if job.same is not None:
                del self._queued_reads[job.same]
        return jobs

    async def _write(self, conn: psycopg.AsyncConnection[Any], jobs: list[_Job]) -> None:
        """Writes of different files in parallel transactions, ``WRITE_CHUNK`` or more each.

        A file's writes stay in one chunk, so chunks never wait for each other's locks.
        """
        jobs = sorted(jobs, key=_lock_order)
        most = 1 + max(0, self._max_runners - self._held)
        chunks: list[list[_Job]] = [[]]
        for job in jobs:
            last = chunks[-1]
            if (
                len(last) >= WRITE_CHUNK
                and _lock_order(last[-1]) != _lock_order(job)
                and len(chunks) < most
            ):
                chunks.append([])
            chunks[-1].append(job)

        async def elsewhere(chunk: list[_Job]) -> None:
            self._held += 1
            try:
                async with self._connect() as other:
                    await _together(other, chunk, writes=True)
            except Exception as exc:  # no connection: as if each had run alone
                for job in chunk:
                    _fail(job, exc)
            finally:
                self._held -= 1

        if len(chunks) == 1:  # in this task: the runner sees what its callers queue next
            await _together(conn, chunks[0], writes=True)
            return
        await asyncio.gather(
            _together(conn, chunks[0], writes=True), *(elsewhere(c) for c in chunks[1:])
        )

    async def _drain(self) -> None:
        jobs: list[_Job] = []
        again = True
        self._held += 1
        try:
            # One more step of the loop first: calls their callers start together (an
            # edit group's read, see ``_edits``) join the first batch. Never between
            # batches: the loop's queue then holds every caller just answered.
            await asyncio.sleep(0)
            async with self._connect() as conn:
                while self._queue:  # (never waits holding a connection with nothing to do)
                    jobs = self._take()
                    reads = [job for job in jobs if not job.step.write]
                    writes = [job for job in jobs if job.step.write]
                    if reads:
                        await _together(conn, reads, writes=False)
                    if writes:
                        await self._write(conn, writes)
                    jobs = []
        except BaseException as exc:
            # No connection (pool timeout, closed store) or cancelled: the calls this
            # runner holds fail as they would have alone; if it holds none, the next
            # batch takes the error, so no call waits for a runner that never comes.
            for job in jobs or self._take():
                _fail(job, exc)
            if not isinstance(exc, Exception):
                again = False  # the loop is shutting down
                raise
        finally:
            self._held -= 1
            self._runners -= 1
            if again:
                self._start()  # calls queued while this runner returned its connection
