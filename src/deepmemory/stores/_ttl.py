"""LangGraph's per-item TTL on our stores: expired items swept in the background.

An item put with ``ttl`` minutes (``put(..., ttl=)`` or the store's ``ttl=``
``default_ttl``) carries ``ttl_minutes`` and ``expires_at`` (m009). A read that
refreshes (``refresh_ttl``, by default the store's ``refresh_on_read``) moves
``expires_at`` of a live item to now plus its TTL (``_sql.plan_op``); an expired item is
never brought back. Expired rows stay until ``sweep_ttl()`` deletes them, by hand or from
the sweeper thread started by ``start_ttl_sweeper()`` every ``sweep_interval_minutes``;
until then LangGraph reads (``get``, ``search``, ``list_namespaces``) still return them,
as in LangGraph's stores, unless the config sets ``omit_expired``.

This is LangGraph's TTL, set per item by whoever puts it. The file tools' expiry
(``with_expiry``, ``Expiry``) is a property of the reader instead: files not used for a
time are hidden from that view, whatever wrote them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any

from deepmemory.stores._sql import Dialect, Step, _step

log = logging.getLogger(__name__)


def sweep_expired(dialect: Dialect, epoch: float) -> Step[int]:
    """Delete the items whose TTL ran out by ``epoch``: how many."""
    sql = (
        "DELETE FROM deepmemory_items WHERE expires_at IS NOT NULL AND expires_at <= :epoch "
        "RETURNING key"
    )
    if dialect == "postgres":  # items being changed now are left for the next sweep
        sql = (
            "DELETE FROM deepmemory_items WHERE (namespace, key) IN (SELECT namespace, key "
            "FROM deepmemory_items WHERE expires_at IS NOT NULL AND expires_at <= :epoch "
            "FOR UPDATE SKIP LOCKED) RETURNING key"
        )
    params: dict[str, Any] = {"epoch": epoch}
    return _step(dialect, sql, params, lambda rows: len(rows), write=True)


class SweeperFuture(Future[None]):
    """Done when the sweeper stops; ``await``-able too.

    LangGraph's async stores return a task from ``await store.start_ttl_sweeper()``;
    awaiting this future returns it at once (the sweeper is already running).
    """

    def __await__(self) -> Generator[Any, None, SweeperFuture]:
        return self._itself().__await__()

    async def _itself(self) -> SweeperFuture:
        return self


class Stopped:
    """``stop_ttl_sweeper()``'s answer: whether the sweeper stopped in time.

    True or false as a bool, and ``await``-able to that bool (LangGraph's async stores).
    Called from a coroutine, ``stop_ttl_sweeper()`` never blocks the event loop: a
    sweep in progress may be waiting for a transaction that loop has to finish. Then
    awaiting the answer waits for the thread in a worker thread, and its bool says
    whether the thread has already ended.
    """

    __slots__ = ("_sweeper", "_timeout", "stopped")

    def __init__(
        self, stopped: bool, sweeper: Sweeper | None = None, timeout: float | None = None
    ) -> None:
        self.stopped, self._sweeper, self._timeout = stopped, sweeper, timeout

    def __bool__(self) -> bool:
        if self._sweeper is not None:
            return self._sweeper.ended()
        return self.stopped

    def __eq__(self, other: object) -> bool:
        return bool(self) == (bool(other) if isinstance(other, Stopped) else other)

    def __hash__(self) -> int:
        return hash(bool(self))

    def __repr__(self) -> str:
        return repr(bool(self))

    def __await__(self) -> Generator[Any, None, bool]:
        return self._value().__await__()

    async def _value(self) -> bool:
        if self._sweeper is not None:
            self.stopped = await asyncio.to_thread(self._sweeper.join, self._timeout)
            self._sweeper = None
        return self.stopped


def finished() -> SweeperFuture:
    """The future of a sweeper that never started (no interval)."""
    done = SweeperFuture()
    done.set_result(None)
    return done


class Sweeper:
    """A daemon thread calling ``sweep`` every ``minutes`` until stopped."""

    def __init__(self, sweep: Callable[[], int], minutes: float) -> None:
        self._sweep, self._seconds = sweep, minutes * 60
        self._stop = threading.Event()
        self.done = SweeperFuture()
        self._thread = threading.Thread(target=self._run, name="deepmemory-ttl", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._seconds):
                try:
                    swept = self._sweep()
                except Exception:  # a failed sweep is retried at the next interval
                    log.exception("Sweeping expired store items failed; retrying later.")
                else:
                    if swept:
                        log.info("Swept %d expired store items.", swept)
        finally:
            self.done.set_result(None)

    def stop(self, timeout: float | None = None) -> Stopped:
        """Stop the thread; whether it ended within ``timeout`` seconds (see ``Stopped``)."""
        self._stop.set()
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop in this thread: wait here
            return Stopped(self.join(timeout))
        return Stopped(False, self, timeout)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.ended()

    def ended(self) -> bool:
        return not self._thread.is_alive()
