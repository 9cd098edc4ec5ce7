"""Concurrent async calls on one event loop, run together on PostgreSQL.

Each async call that is one statement (a file read, an in-place edit, a LangGraph
``aget`` or ``aput``) joins its loop's queue. Up to ``max_connections`` runners each
take a pooled connection and run what is queued, ``BATCH`` calls at a time, in one
round trip: reads pipelined (identical ones run once), writes pipelined inside one
transaction, in key order (so two runners lock rows in the same order).

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
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import psycopg

from deepmemory.stores._sql import Row, Step

# Calls a runner takes at once: large enough to amortise a round trip, small enough
# that one slow batch does not hold many callers.
BATCH = 128

Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


@dataclass(slots=True)
class _Job:
    step: Step[Any]
    future: asyncio.Future[Any]


def _deliver(job: _Job, rows: list[Row]) -> None:
    if job.future.done():  # the caller was cancelled
        return
    try:
        job.future.set_result(job.step.finish(rows))
    except Exception as exc:  # a finish that rejects its rows fails only its own call
        job.future.set_exception(exc)


def _fail(job: _Job, exc: BaseException) -> None:
    if not job.future.done():
        if isinstance(exc, asyncio.CancelledError):
            job.future.cancel()
        else:
            job.future.set_exception(exc)


def _same(step: Step[Any]) -> Any:
    """What makes two reads the same query, whose rows each call finishes its own way."""
    sql, params = step.query
    try:
        return hash((sql, *sorted(params.items()))) and (sql, *sorted(params.items()))
    except TypeError:  # an unhashable or unorderable parameter: never merged
        return None


def _lock_order(job: _Job) -> tuple[str, str]:
    params = job.step.query[1]
    return str(params.get("ns", "")), str(params.get("key", ""))


async def run_one(conn: psycopg.AsyncConnection[Any], step: Step[Any]) -> Any:
    """One statement, its own transaction (autocommit): the step's result."""
    sql, params = step.query
    cur = await conn.execute(sql, params, prepare=False if step.custom_plan else None)
    return step.finish(await cur.fetchall() if cur.description is not None else [])


async def _pipelined(
    conn: psycopg.AsyncConnection[Any], steps: Sequence[Step[Any]], transaction: bool
) -> list[list[Row]]:
    """Rows of each step, sent in one round trip (and one transaction if asked)."""
    async with conn.pipeline():
        cursors = []
        async with conn.transaction() if transaction else _nothing():
            for step in steps:
                sql, params = step.query
                prepare = False if step.custom_plan else None
                cursors.append(await conn.execute(sql, params, prepare=prepare))
    return [await cur.fetchall() if cur.description is not None else [] for cur in cursors]


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def _alone(conn: psycopg.AsyncConnection[Any], job: _Job) -> None:
    try:
        result = await run_one(conn, job.step)
    except Exception as exc:
        _fail(job, exc)
    else:
        if not job.future.done():
            job.future.set_result(result)


async def _together(conn: psycopg.AsyncConnection[Any], jobs: list[_Job], writes: bool) -> None:
    if len(jobs) == 1:
        await _alone(conn, jobs[0])
        return
    if writes:
        groups = [[job] for job in sorted(jobs, key=_lock_order)]
    else:
        merged: dict[Any, list[_Job]] = {}
        for n, job in enumerate(jobs):
            merged.setdefault(_same(job.step) or ("unmerged", n), []).append(job)
        groups = list(merged.values())
    try:
        results = await _pipelined(conn, [group[0].step for group in groups], writes)
    except psycopg.Error:
        # Rolled back: each statement again on its own, for its own result or error.
        for job in jobs:
            await _alone(conn, job)
        return
    for group, rows in zip(groups, results, strict=True):
        for job in group:
            _deliver(job, rows)


class Coalescer:
    """The queue of one event loop's single-statement calls, and its runners."""

    def __init__(self, connect: Connect, runners: int) -> None:
        self._connect = connect
        self._max_runners = runners
        self._runners = 0
        self._queue: deque[_Job] = deque()
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while running

    async def run(self, step: Step[Any]) -> Any:
        """Run ``step`` with whatever else is queued; its result as if run alone."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(step, future))
        self._start()
        return await future

    def _start(self) -> None:
        if self._queue and self._runners < self._max_runners:
            self._runners += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Job]:
        return [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]

    async def _drain(self) -> None:
        jobs: list[_Job] = []
        again = True
        try:
            async with self._connect() as conn:
                while self._queue:
                    jobs = self._take()
                    reads = [job for job in jobs if not job.step.write]
                    writes = [job for job in jobs if job.step.write]
                    if reads:
                        await _together(conn, reads, writes=False)
                    if writes:
                        await _together(conn, writes, writes=True)
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
            self._runners -= 1
            if again:
                self._start()  # calls queued while this runner returned its connection
