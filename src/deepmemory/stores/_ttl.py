"""LangGraph's per-item TTL on our stores: expired items swept in the background.

An item put with ``ttl`` minutes (``put(..., ttl=)`` or the store's ``ttl=``
``default_ttl``) carries ``ttl_minutes`` and ``expires_at`` (m009). Every LangGraph read
(``get``, ``search``, ``list_namespaces``) leaves out items past ``expires_at``, and a
read that refreshes (``refresh_ttl``, by default the store's ``refresh_on_read``) moves
``expires_at`` to now plus the item's TTL (``_sql.plan_op``). Expired rows stay until
``sweep_ttl()`` deletes them, by hand or from the sweeper thread started by
``start_ttl_sweeper()`` every ``sweep_interval_minutes``.

This is LangGraph's TTL, set per item by whoever puts it. The file tools' expiry
(``with_expiry``, ``Expiry``) is a property of the reader instead: files not used for a
time are hidden from that view, whatever wrote them.
"""

from __future__ import annotations

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
    """

    __slots__ = ("stopped",)

    def __init__(self, stopped: bool) -> None:
        self.stopped = stopped

    def __bool__(self) -> bool:
        return self.stopped

    def __eq__(self, other: object) -> bool:
        return self.stopped == (other.stopped if isinstance(other, Stopped) else other)

    def __hash__(self) -> int:
        return hash(self.stopped)

    def __repr__(self) -> str:
        return repr(self.stopped)

    def __await__(self) -> Generator[Any, None, bool]:
        return self._value().__await__()

    async def _value(self) -> bool:
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

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread; whether it ended within ``timeout`` seconds."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()
