"""The one clock every timestamp deepmemory writes or compares comes from.

Files' ``modified_at``, the stores' ``updated_at`` and last-use columns, revision
times and expiry cut-offs all read :func:`now`, so a test (or a simulation of months
of use) can move time with :class:`ManualClock` instead of sleeping:

    >>> from datetime import timedelta
    >>> with use_clock(ManualClock()) as clock:
    ...     before = now()
    ...     clock.advance(timedelta(days=31))
    ...     (now() - before).days
    31

The clock is process-wide (a store's background sweeper and the agent's tools must
agree on the time); :func:`use_clock` restores the previous one on exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


_current: Clock = system_clock


def now() -> datetime:
    """The current time (UTC, timezone-aware) from the clock in use."""
    return _current()


def iso(moment: datetime) -> str:
    """``moment`` as the ISO 8601 UTC text stores keep: fixed width, so it sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    """:func:`now` as :func:`iso` text."""
    return iso(now())


class ManualClock:
    """A clock that stands still until moved: for tests and simulations.

    Example:
        >>> clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        >>> clock.advance(timedelta(hours=2)).isoformat()
        '2026-01-01T02:00:00+00:00'
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or system_clock()
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start, e.g. tzinfo=UTC.")
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """The time the clock shows."""
        with self._lock:
            return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by ``by``; the new time."""
        if by < timedelta(0):
            raise ValueError(f"A clock only moves forward, not by {by}.")
        with self._lock:
            self._now += by
            return self._now


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Use ``clock`` for every timestamp inside the block (process-wide)."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous


__all__ = ["Clock", "ManualClock", "iso", "now", "now_iso", "system_clock", "use_clock"]
