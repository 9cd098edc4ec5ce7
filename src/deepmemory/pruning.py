"""Forgetting what is stale: time to live, caps per namespace, and the prune that applies them.

A :class:`PrunePolicy` belongs to a route: ``StoreBackend(ttl=timedelta(days=90))`` or
``StoreBackend(prune=PrunePolicy(ttl=..., max_files=..., max_bytes=...))``.

* **Time to live.** A file not used for ``ttl`` (used: written, or read where reads
  refresh it, ``refresh_on_read``) has *expired*: every query of that backend leaves
  it out at once (ls, glob, grep, read, edit), whether or not its row has been
  deleted yet. On our stores reads are recorded (at most once per 1% of the TTL);
  on other stores a file's last use is its last write.
* **Caps.** ``max_files`` and ``max_bytes`` bound a namespace. A prune evicts until
  both hold, in this order: expired files first, then the least recently used file
  first (oldest last use; ties by path). Caps are applied by pruning, not on each
  write; to refuse writes over a size, wrap the route in ``LimitsBackend``.
* **Prune.** :func:`prune_namespace` (or ``StoreBackend.prune()``, the CLI's
  ``deepmemory memory prune``) lists each file's size and last use (never its
  content), decides, and deletes in batches, one short transaction each, so agent
  turns running at the same time are never held up. A file written or edited after
  it was chosen is kept. On a store that keeps history each deletion is a revision,
  so a pruned file can be restored. ``dry_run=True`` reports and deletes nothing.
* **Sweeping.** :class:`Sweeper` runs prunes in a background thread every so often
  for a long-lived process; ``deepmemory chat`` starts one when a policy is set.

On a LangGraph store with TTL support (its ``SqliteStore``/``PostgresStore`` with a
``ttl`` config) the TTL is also passed with each write, so LangGraph's own sweeper
removes the same files; reads are not refreshed there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Self

from langgraph.store.base import BaseStore

from deepmemory.backends._base import BACKOFF, Call, Op, run_async, run_sync
from deepmemory.backends._text import human_size
from deepmemory.backends.protocol import (
    Author,
    Expiry,
    FileUsage,
    Namespace,
    SupportsExpiry,
    implements,
)
from deepmemory.errors import ConfigError

logger = logging.getLogger("deepmemory.pruning")

DEFAULT_BATCH_SIZE = 200
# Recorded as the author of the deletions a prune makes (history shows it).
PRUNE_AUTHOR = Author(thread_id="deepmemory-prune")

Reason = Literal["expired", "over max_files", "over max_bytes"]


def _positive(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f"{name} must be a whole number >= 0 or None, not {value!r}.")


@dataclass(frozen=True, slots=True)
class PrunePolicy:
    """What a route forgets: files unused for ``ttl``, and anything over the caps.

    Example:
        >>> policy = PrunePolicy(ttl=timedelta(days=90), max_files=500)
        >>> policy.expiry.ttl.days
        90
    """

    ttl: timedelta | None = None
    refresh_on_read: bool = True
    max_files: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.ttl is not None and (
            not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0)
        ):
            raise ConfigError(
                f"ttl must be a positive timedelta such as timedelta(days=90), not {self.ttl!r}."
            )
        _positive(self.max_files, "max_files")
        _positive(self.max_bytes, "max_bytes")

    @property
    def expiry(self) -> Expiry | None:
        """What backends apply: hide expired files, record reads; ``None``: neither."""
        caps = self.max_files is not None or self.max_bytes is not None
        if self.ttl is None and not (caps and self.refresh_on_read):
            return None
        return Expiry(self.ttl, self.refresh_on_read)

    @property
    def is_empty(self) -> bool:
        """Whether this policy never removes anything."""
        return self.ttl is None and self.max_files is None and self.max_bytes is None


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


@dataclass(frozen=True, slots=True)
class Pruned:
    """One file a prune removed (or, in a dry run, would remove), and why."""

    key: str
    size: int
    last_used: str
    reason: Reason


@dataclass(slots=True)
class PruneReport:
    """What a prune of one namespace did."""

    namespace: Namespace
    dry_run: bool
    removed: list[Pruned] = field(default_factory=list)
    kept_files: int = 0
    kept_bytes: int = 0
    # Chosen, but written or edited before they could be deleted: kept.
    changed_since: list[str] = field(default_factory=list)

    @property
    def removed_bytes(self) -> int:
        """Bytes of the removed files."""
        return sum(p.size for p in self.removed)

    def summary(self) -> str:
        """One line for people: what was removed and what is left."""
        verb = "would remove" if self.dry_run else "removed"
        reasons: dict[str, int] = {}
        for p in self.removed:
            reasons[p.reason] = reasons.get(p.reason, 0) + 1
        why = ", ".join(f"{n} {r}" for r, n in reasons.items())
        line = (
            f"{'/'.join(self.namespace)}: {verb} {_files(len(self.removed))}"
            f"{f' ({why})' if why else ''}, {human_size(self.removed_bytes) or '0 B'}; "
            f"{_files(self.kept_files)}, {human_size(self.kept_bytes) or '0 B'} left"
        )
        if self.changed_since:
            line += f"; {_files(len(self.changed_since))} kept: changed meanwhile"
        return line


def choose(usage: Iterable[FileUsage], policy: PrunePolicy) -> tuple[list[Pruned], int, int]:
    """The files ``policy`` removes, in removal order, and the files and bytes left.

    Pure: expired files first (by path), then least recently used first until the caps
    hold (oldest ``last_used``, ties by path; a file whose last use is unknown, ``''``,
    counts as the oldest but never expires).
    """
    cutoff = None if policy.expiry is None else policy.expiry.cutoff()
    expired: list[FileUsage] = []
    alive: list[FileUsage] = []
    for u in sorted(usage, key=lambda u: u.key):
        # last_used may be foreign text; '' (unknown) never expires.
        (expired if cutoff and u.last_used and u.last_used < cutoff else alive).append(u)
    removed = [Pruned(u.key, u.size, u.last_used, "expired") for u in expired]
    alive.sort(key=lambda u: (u.last_used, u.key))
    files, size = len(alive), sum(u.size for u in alive)
    for u in alive:
        if policy.max_files is not None and files > policy.max_files:
            reason: Reason = "over max_files"
        elif policy.max_bytes is not None and size > policy.max_bytes:
            reason = "over max_bytes"
        else:
            break
        removed.append(Pruned(u.key, u.size, u.last_used, reason))
        files, size = files - 1, size - u.size
    return removed, files, size


def _repository(store: BaseStore) -> Any:
    if implements(store, SupportsExpiry):
        return store
    from deepmemory.backends.store import _GenericStoreFiles  # store.py imports this module

    return _GenericStoreFiles(store)


def _prune(
    namespace: Namespace,
    policy: PrunePolicy,
    dry_run: bool,
    batch_size: int,
    on_batch: Callable[[list[str]], None] | None,
    cancelled: Callable[[], bool] | None,
    yield_to_writers: bool,
) -> Op[PruneReport]:
    """The prune, written once: ``run_sync`` / ``run_async`` drive it (``backends._base``)."""
    usage: list[FileUsage] = yield Call("file_usage", (namespace,))
    removed, files, size = choose(usage, policy)
    report = PruneReport(namespace, dry_run, removed, files, size)
    if dry_run or not removed:
        return report
    by_key = {u.key: u for u in usage}
    victims = [by_key[p.key] for p in removed]
    deleted: set[str] = set()
    for start in range(0, len(victims), max(1, batch_size)):
        if cancelled is not None and cancelled():
            break
        started = time.monotonic()
        batch = victims[start : start + max(1, batch_size)]
        done: list[str] = yield Call("file_discard", (namespace, batch), {"author": PRUNE_AUTHOR})
        deleted.update(done)
        if on_batch is not None:
            on_batch(list(done))
        if yield_to_writers:  # leave writers as much time as we took
            yield Call(BACKOFF, (time.monotonic() - started,))
    kept = [v for v in victims if v.key not in deleted]  # changed since, or not reached
    report.changed_since = [v.key for v in kept]
    report.removed = [p for p in report.removed if p.key in deleted]
    report.kept_files += len(kept)
    report.kept_bytes += sum(v.size for v in kept)
    return report


def prune_namespace(
    store: BaseStore,
    namespace: Namespace,
    policy: PrunePolicy,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[list[str]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    yield_to_writers: bool = False,
) -> PruneReport:
    """Apply ``policy`` to the files of ``namespace`` in ``store``; what was removed.

    Deletes in batches of ``batch_size`` files, each its own transaction; with
    ``yield_to_writers`` it waits after each as long as the batch took, so writers
    sharing the database (agent turns; on SQLite one writer at a time) get at least
    half the time (``Sweeper`` does). ``on_batch`` is told the keys of each batch deleted;
    once ``cancelled()`` is true no further batch starts (the report then lists what
    was deleted, the rest is kept).

    Example:
        >>> from langgraph.store.memory import InMemoryStore
        >>> prune_namespace(InMemoryStore(), ("memories",), PrunePolicy(max_files=10)).summary()
        'memories: removed 0 files, 0 B; 0 files, 0 B left'
    """
    op = _prune(namespace, policy, dry_run, batch_size, on_batch, cancelled, yield_to_writers)
    return run_sync(op, _repository(store))


async def aprune_namespace(
    store: BaseStore,
    namespace: Namespace,
    policy: PrunePolicy,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[list[str]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    yield_to_writers: bool = False,
) -> PruneReport:
    """Async ``prune_namespace``."""
    op = _prune(namespace, policy, dry_run, batch_size, on_batch, cancelled, yield_to_writers)
    return await run_async(op, _repository(store))


def namespaces_under(store: BaseStore, prefix: Namespace) -> list[Namespace]:
    """Every namespace of ``store`` starting with ``prefix`` (one per user, say)."""
    # One call, no OFFSET paging (which would re-list the namespaces for every page).
    return [tuple(ns) for ns in store.list_namespaces(prefix=prefix, limit=2**31 - 1)]


class Sweeper:
    """Prunes namespaces in a background thread, every ``every``, for long-lived processes.

    Each prune deletes in small batches (one short transaction each), so agent turns
    using the same store carry on while it runs. Failures are logged and retried at
    the next sweep; ``last_error`` keeps the latest.

    Example:
        >>> from langgraph.store.memory import InMemoryStore
        >>> with Sweeper(InMemoryStore(), PrunePolicy(ttl=timedelta(days=30)),
        ...              prefix=("memories",), every=timedelta(hours=1)) as sweeper:
        ...     [r.removed for r in sweeper.sweep()]
        []
    """

    def __init__(
        self,
        store: BaseStore,
        policy: PrunePolicy,
        *,
        namespaces: Sequence[Namespace] = (),
        prefix: Namespace | None = None,
        every: timedelta = timedelta(minutes=10),
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_batch: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Sweep ``namespaces`` and every namespace under ``prefix`` with ``policy``."""
        if not namespaces and prefix is None:
            raise ConfigError("Sweeper needs namespaces=[...] or prefix=(...) to sweep.")
        if not isinstance(every, timedelta) or every <= timedelta(0):
            raise ConfigError(f"every must be a positive timedelta, not {every!r}.")
        self.store, self.policy = store, policy
        self.namespaces, self.prefix = [tuple(ns) for ns in namespaces], prefix
        self.every, self.batch_size, self.on_batch = every, batch_size, on_batch
        self.last_reports: list[PruneReport] = []
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one sweep at a time

    def sweep(self, *, dry_run: bool = False) -> list[PruneReport]:
        """Prune every namespace now (in the calling thread); the reports."""
        # stop() cancels the background sweep only, not one asked for directly.
        background = threading.current_thread() is self._thread
        with self._lock:
            targets = list(self.namespaces)
            if self.prefix is not None:
                targets += [ns for ns in namespaces_under(self.store, self.prefix)]
            reports = [
                prune_namespace(
                    self.store,
                    ns,
                    self.policy,
                    dry_run=dry_run,
                    batch_size=self.batch_size,
                    on_batch=self.on_batch,
                    cancelled=self._stop.is_set if background else None,
                    yield_to_writers=True,
                )
                for ns in dict.fromkeys(targets)
            ]
            self.last_reports = reports
            return reports

    def _run(self) -> None:
        while True:  # the first sweep runs even if stop() came at once
            try:
                for report in self.sweep():
                    if report.removed:
                        logger.info("prune %s", report.summary())
                self.last_error = None
            except Exception as exc:  # a broken database must not kill the process
                self.last_error = exc
                logger.warning("prune failed, will retry: %s", exc)
            if self._stop.wait(self.every.total_seconds()):
                return

    def start(self) -> Self:
        """Start sweeping in a daemon thread (the first sweep runs at once)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="deepmemory-sweeper", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop sweeping: the sweep in progress ends after its current batch.

        Waits for that (up to ``timeout`` seconds; by default until done), so the
        store can be closed afterwards.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = [
    "PRUNE_AUTHOR",
    "PrunePolicy",
    "PruneReport",
    "Pruned",
    "Sweeper",
    "aprune_namespace",
    "choose",
    "namespaces_under",
    "prune_namespace",
]
