"""Benchmark deepmemory's SQLiteStore / PostgresStore against OFFSET-paging baselines.

Usage::

    python bench/bench_stores.py [--sizes 1000,10000,100000] [--engines sqlite,postgres]
                                 [--quick] [--json PATH] [--pg-url URL]

For each engine (SQLite, PostgreSQL) and memory size N (files of ~2 KB of text in
N/100 directories of 100 files, three levels deep, plus 20 planted files), it times
the file operations an agent's tools perform, through three implementations:

* **ours**: ``deepmemory.backends.StoreBackend`` over ``deepmemory.stores.SQLiteStore``
  / ``PostgresStore`` (listing, glob and grep answered inside the database);
* **baseline**: ``bench/baseline.py``, a store backend in the style of the reference
  harness: ``ls``/``glob``/``grep`` page through the whole namespace with
  ``store.search(namespace, limit=100, offset=k)`` over LangGraph's own store of the
  same kind (``langgraph.store.sqlite.SqliteStore`` on a file,
  ``langgraph.store.postgres.PostgresStore`` on the same server) and filter in Python;
* **deepagents** (only if the optional ``deepagents`` package is importable):
  its real ``StoreBackend`` over the same LangGraph store as the baseline.

Each operation's result is checked (100 entries, 20 files, 20 matching lines, ...),
the median of several repetitions is reported, and the targets are checked and
printed as PASS/FAIL. See ``bench/README.md`` for what is measured and why.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from baseline import PagingStoreBackend
from langgraph.store.base import BaseStore, PutOp
from psycopg import sql
from psycopg.conninfo import make_conninfo

from deepmemory.backends import StoreBackend

NAMESPACE = ("bench", "memory")
FILES_PER_DIR = 100
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

# -- the corpus ------------------------------------------------------------------------
# Regular file i lives in directory i // 100 at /a{d%10}/b{(d//10)%10}/d{d:05d}/n{j:03d}.md
# (three levels: 10 areas, 10 groups each, then the 100-file directories).
# Body text is lowercase pseudo-words only, so the planted strings below (upper case,
# digits, "milestone-", "/projects/") occur exactly where they are planted.
LS_DIR = "/a5/b0/d00005"  # directory 5: exactly 100 files, no subdirectories
GLOB_ALL = "**/milestone-*.md"  # from "/": the 20 planted /projects/p??/milestone-??.md
GLOB_DIR = ("**/*.md", "/projects")  # the same 20 files, searched under /projects
LITERAL = "ZEPHYR-4471"  # one line in each of 20 regular files (indices 7, 57, ..., 957)
LITERAL_FILES = [50 * k + 7 for k in range(20)]
READ_INDEX = 742
# Write and edit targets: ours and the baseline use their own stores; deepagents shares
# the baseline's LangGraph store, so it writes and edits files of its own.
WRITE_INDEX = {"ours": 843, "baseline": 843, "deepagents": 846}
EDIT_INDEX = {"ours": 944, "baseline": 944, "deepagents": 945}
EDIT_MARKS = ("status: draft-A", "status: draft-B")  # the unique string edit swaps
MIN_SIZE = 1000  # the planted literal files and targets live in the first 1,000 files

OPS = ["ls", "glob", "glob_dir", "grep", "read", "write", "edit"]
SEARCH_OPS = ["ls", "glob", "glob_dir", "grep"]
SINGLE_OPS = ["read", "write", "edit"]
MEMORY_OPS = ["ls", "glob", "glob_dir", "grep", "read"]
# Peak memory of the baselines only where it makes the contrast (it needs a slow extra call).
BASELINE_MEMORY_OPS = {"baseline": ["ls", "grep"], "deepagents": []}

_SYLLABLES = (
    "ka lo mi ren tus va bel dor fin gar hul jex kin lum mor nas pel qui rof sal "
    "tem ur vin wel xan yor zid an er is on ul tra ple mon vek sor dal"
).split()
_VOCAB = sorted({"".join(random.Random(k).choices(_SYLLABLES, k=1 + k % 3)) for k in range(4000)})


def dir_of(d: int) -> str:
    return f"/a{d % 10}/b{(d // 10) % 10}/d{d:05d}"


def key_of(i: int) -> str:
    return f"{dir_of(i // FILES_PER_DIR)}/n{i % FILES_PER_DIR:03d}.md"


def body(seed: int, target_bytes: int = 2000) -> str:
    """About ``target_bytes`` of lowercase text in lines of 10 words."""
    rng = random.Random(seed)
    lines: list[str] = []
    size = 0
    while size < target_bytes:
        line = " ".join(rng.choices(_VOCAB, k=10))
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def regular_text(i: int) -> str:
    text = f"# notes {i}\n" + body(i)
    if i in LITERAL_FILES:
        text += f"the build id is {LITERAL} for this one\n"
    if i in EDIT_INDEX.values():
        text += EDIT_MARKS[0] + "\n"
    return text


def planted() -> list[tuple[str, str]]:
    """The 20 files the glob patterns match (each in its own directory)."""
    return [
        (f"/projects/p{k:02d}/milestone-{k:02d}.md", f"# milestone {k}\n" + body(10**9 + k))
        for k in range(20)
    ]


def corpus(start: int, stop: int) -> Iterator[tuple[str, str]]:
    """Regular files ``start`` .. ``stop - 1`` (and the planted files with the first batch)."""
    if start == 0:
        yield from planted()
    for i in range(start, stop):
        yield key_of(i), regular_text(i)


def file_value(text: str, now: str) -> dict[str, Any]:
    return {"content": text, "encoding": "utf-8", "created_at": now, "modified_at": now}


def load(store: BaseStore, start: int, stop: int, chunk: int = 1000) -> None:
    """Bulk-load through ``store.batch`` in chunks of PutOps (no per-file round trip)."""
    now = datetime.now(UTC).isoformat()
    ops: list[PutOp] = []
    for key, text in corpus(start, stop):
        ops.append(PutOp(NAMESPACE, key, file_value(text, now), index=False))
        if len(ops) >= chunk:
            store.batch(ops)
            ops = []
    if ops:
        store.batch(ops)


# -- the implementations, adapted to one shape -----------------------------------------
# Each op is a callable returning a number that is checked against EXPECTED: entries,
# files, matching lines, lines read, or 1 for a write / edit that succeeded.

EXPECTED = {
    "ls": FILES_PER_DIR,
    "glob": 20,
    "glob_dir": 20,
    "grep": 20,
    "read": len(regular_text(READ_INDEX).splitlines()),
    "write": 1,
    "edit": 1,
}
WRITE_TEXTS = (f"# rewritten A\n{body(-1)}", f"# rewritten B\n{body(-2)}")


class Runner:
    """Makes the measured calls of one implementation; ``ops()`` maps op name to a callable."""

    name = ""

    def __init__(self) -> None:
        self.writes = 0
        self.edits = 0
        self.write_key = key_of(WRITE_INDEX[self.name])
        self.edit_key = key_of(EDIT_INDEX[self.name])

    def next_write(self) -> str:
        self.writes += 1
        return WRITE_TEXTS[self.writes % 2]

    def next_edit(self) -> tuple[str, str]:
        old, new = EDIT_MARKS if self.edits % 2 == 0 else EDIT_MARKS[::-1]
        self.edits += 1
        return old, new

    def ops(self) -> dict[str, Callable[[], int]]:
        raise NotImplementedError


class Ours(Runner):
    name = "ours"

    def __init__(self, store: BaseStore) -> None:
        super().__init__()
        self.backend = StoreBackend(store=store, namespace=NAMESPACE)

    def ops(self) -> dict[str, Callable[[], int]]:
        b = self.backend

        def ok(result: Any) -> Any:
            if result.error:
                raise RuntimeError(result.error)
            return result

        def write() -> int:
            ok(b.write(self.write_key, self.next_write()))
            return 1

        def edit() -> int:
            return int(ok(b.edit(self.edit_key, *self.next_edit())).occurrences)

        return {
            "ls": lambda: len(ok(b.ls(LS_DIR)).entries),
            "glob": lambda: len(ok(b.glob(GLOB_ALL)).files),
            "glob_dir": lambda: len(ok(b.glob(*GLOB_DIR)).files),
            "grep": lambda: len(ok(b.grep(LITERAL)).matches),
            "read": lambda: len(ok(b.read(key_of(READ_INDEX))).lines),
            "write": write,
            "edit": edit,
        }


class Baseline(Runner):
    name = "baseline"

    def __init__(self, store: BaseStore) -> None:
        super().__init__()
        self.backend = PagingStoreBackend(store, NAMESPACE)

    def ops(self) -> dict[str, Callable[[], int]]:
        b = self.backend

        def write() -> int:
            b.write(self.write_key, self.next_write())
            return 1

        return {
            "ls": lambda: len(b.ls(LS_DIR)),
            "glob": lambda: len(b.glob(GLOB_ALL)),
            "glob_dir": lambda: len(b.glob(*GLOB_DIR)),
            "grep": lambda: len(b.grep(LITERAL)),
            "read": lambda: len(b.read(key_of(READ_INDEX))),
            "write": write,
            "edit": lambda: b.edit(self.edit_key, *self.next_edit()),
        }


class DeepAgents(Runner):
    name = "deepagents"

    def __init__(self, store: BaseStore) -> None:
        super().__init__()
        from deepagents.backends import StoreBackend as DeepAgentsStoreBackend

        self.backend = DeepAgentsStoreBackend(store=store, namespace=lambda _rt: NAMESPACE)

    def ops(self) -> dict[str, Callable[[], int]]:
        b = self.backend

        def ok(result: Any) -> Any:
            if result.error:
                raise RuntimeError(result.error)
            return result

        def read() -> int:
            data = ok(b.read(key_of(READ_INDEX))).file_data
            return len(data["content"].splitlines())

        def write() -> int:
            ok(b.write(self.write_key, self.next_write()))
            return 1

        return {
            "ls": lambda: len(ok(b.ls(LS_DIR)).entries),
            "glob": lambda: len(ok(b.glob(GLOB_ALL)).matches),
            "glob_dir": lambda: len(ok(b.glob(GLOB_DIR[0], GLOB_DIR[1])).matches),
            "grep": lambda: len(ok(b.grep(LITERAL)).matches),
            "read": read,
            "write": write,
            "edit": lambda: int(ok(b.edit(self.edit_key, *self.next_edit())).occurrences),
        }


def deepagents_available() -> bool:
    try:
        import deepagents.backends  # noqa: F401
    except ImportError:
        return False
    return True


# -- timing ----------------------------------------------------------------------------


@dataclass
class Measurement:
    engine: str
    n: int
    op: str
    impl: str
    median_ms: float | None = None
    reps: int = 0
    samples_ms: list[float] = field(default_factory=list)
    result: int | None = None
    expected: int | None = None
    peak_kib: float | None = None
    wrong: int = 0  # calls whose result was not the expected one
    warmup_calls: int = 0  # untimed calls before the samples
    note: str = ""


@dataclass
class Policy:
    reps: int = 7
    reps_single: int = 51  # read/write/edit: ~1 ms calls whose fsync jitter needs more samples
    warmup_calls: int = 25  # untimed calls first, unless they take longer than warmup_s
    warmup_s: float = 2.0
    slow_s: float = 0.5  # a first call slower than this: 3 repetitions instead
    very_slow_s: float = 10.0  # slower than this: the first call is the only sample
    max_call_s: float = 60.0  # a call predicted slower than this is skipped
    probe_s: float = 240.0  # ...except the baseline's ls, measured once up to this
    memory_max_s: float = 10.0  # tracemalloc only for calls faster than this


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    result = fn()
    return (time.perf_counter() - t0) * 1000, result


def peak_kib(fn: Callable[[], int]) -> float:
    """Peak Python allocation during one call, beyond what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / 1024


def measure_op(
    series: list[tuple[Measurement, Callable[[], int], bool]], policy: Policy, reps: int
) -> None:
    """Time one operation of several implementations, interleaved call by call.

    Warm-up first, to the steady state of a long-running agent process: an
    implementation whose first call is fast is called again until ``policy.warmup_calls``
    calls or ``policy.warmup_s`` seconds. That matters on PostgreSQL: psycopg prepares
    a statement server-side from its 5th execution, and PostgreSQL may then switch the
    prepared statement to a generic plan after 5 more, which can change the plan a
    query gets (see README). Then the implementations take turns, one call each per
    round, so that background activity of the machine (autovacuum, checkpoints, page
    cache) falls on all of them alike. A slow first call (a baseline paging through a
    large namespace) is not repeated for warm-up and counts as a sample itself: 3 samples
    in all from ``policy.slow_s`` on, only that one from ``policy.very_slow_s`` on.
    Every call's result is checked; ``m.reps`` and ``m.note`` record what was done.
    """
    gc.collect()  # once per series: a collection before every call would evict the caches
    wanted: list[int] = []
    for m, fn, _ in series:
        first_ms, result = timed(fn)
        m.expected = EXPECTED[m.op]
        m.result = result
        m.wrong = int(result != m.expected)
        if first_ms / 1000 >= policy.very_slow_s:
            m.samples_ms = [first_ms]
            m.note = "1 call (too slow to repeat)"
            wanted.append(1)
        elif first_ms / 1000 >= policy.slow_s:
            m.samples_ms = [first_ms]
            m.note = "3 calls (slow)"
            wanted.append(3)
        else:
            wanted.append(reps)
            calls, spent_ms = 1, first_ms
            while calls < policy.warmup_calls and spent_ms < policy.warmup_s * 1000:
                ms, result = timed(fn)
                calls, spent_ms = calls + 1, spent_ms + ms
                if result != m.expected:
                    m.wrong += 1
                    m.result = result
            m.warmup_calls = calls
    for _ in range(reps):
        for (m, fn, _), want in zip(series, wanted, strict=True):
            if len(m.samples_ms) < want:
                ms, result = timed(fn)
                m.samples_ms.append(ms)
                if result != m.expected:
                    m.wrong += 1
                    m.result = result
    for (m, fn, memory), _ in zip(series, wanted, strict=True):
        m.reps = len(m.samples_ms)
        m.median_ms = statistics.median(m.samples_ms)
        if m.wrong:
            calls = m.reps + m.warmup_calls  # the warm-up calls were checked too
            wrong = (
                f"WRONG RESULT in {m.wrong}/{calls} calls (e.g. {m.result}, expected {m.expected})"
            )
            m.note = f"{m.note}; {wrong}" if m.note else wrong
        if memory and m.median_ms / 1000 < policy.memory_max_s:
            m.peak_kib = peak_kib(fn)


def predicted_s(history: dict[int, float], n: int) -> float | None:
    """Predicted seconds per call at size ``n`` from the two largest smaller sizes measured."""
    sizes = sorted(s for s in history if s < n)
    if not sizes:
        return None
    if len(sizes) == 1:
        exponent = 2.0  # OFFSET paging: N/100 pages, each re-reading the skipped rows
        (s1,) = sizes
    else:
        s0, s1 = sizes[-2], sizes[-1]
        exponent = max(1.0, math.log(history[s1] / history[s0]) / math.log(s1 / s0))
    return history[s1] / 1000 * (n / s1) ** exponent


# -- engines ---------------------------------------------------------------------------


@dataclass
class EngineSetup:
    """One engine: how to open its stores (ours and LangGraph's) and what to do after a load.

    ``open_stores`` enters fresh store objects into an ``ExitStack``: every size is
    measured through new stores (new connections), as a process started on a memory of
    that size would be, so no connection carries statement or plan history from the
    smaller sizes measured before (see ``measure_op`` on prepared statements).
    """

    name: str
    open_stores: Callable[[contextlib.ExitStack[Any]], tuple[BaseStore, BaseStore]]
    after_load: Callable[[], None]
    facts: dict[str, str]


@contextlib.contextmanager
def sqlite_engine(keep_revisions: int | None = 50) -> Iterator[EngineSetup]:
    """Two database files in a temporary directory, removed afterwards."""
    from langgraph.store.sqlite import SqliteStore as LangGraphSqliteStore

    from deepmemory.stores import SQLiteStore

    tmp = Path(tempfile.mkdtemp(prefix="deepmemory-bench-"))

    def open_stores(stack: contextlib.ExitStack[Any]) -> tuple[BaseStore, BaseStore]:
        ours = stack.enter_context(SQLiteStore(tmp / "ours.db", keep_revisions=keep_revisions))
        lg = stack.enter_context(LangGraphSqliteStore.from_conn_string(str(tmp / "lg.db")))
        lg.setup()
        return ours, lg

    try:
        facts = {"sqlite": sqlite3.sqlite_version, "dir": str(tmp)}
        yield EngineSetup("sqlite", open_stores, lambda: None, facts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def postgres_engine(url: str, keep_revisions: int | None = 50) -> Iterator[EngineSetup]:
    """A fresh database on the server (dropped afterwards) holding both stores' tables."""
    from langgraph.store.postgres import PostgresStore as LangGraphPostgresStore

    from deepmemory.stores import PostgresStore

    dbname = f"deepmemory_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    db_url = make_conninfo(url, dbname=dbname)

    def open_stores(stack: contextlib.ExitStack[Any]) -> tuple[BaseStore, BaseStore]:
        ours = stack.enter_context(
            PostgresStore(connection_string=db_url, keep_revisions=keep_revisions)
        )
        lg = stack.enter_context(LangGraphPostgresStore.from_conn_string(db_url))
        lg.setup()
        return ours, lg

    def analyze() -> None:
        # What autovacuum would do shortly after a bulk load: fresh statistics.
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    try:
        facts = {"postgres": version, "database": dbname}
        yield EngineSetup("postgres", open_stores, analyze, facts)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


def reset_targets(store: BaseStore) -> None:
    """Put the write and edit targets back as loaded, before an implementation edits them."""
    now = datetime.now(UTC).isoformat()
    for i in {*WRITE_INDEX.values(), *EDIT_INDEX.values()}:
        store.put(NAMESPACE, key_of(i), file_value(regular_text(i), now), index=False)


def run_engine(
    setup: EngineSetup, sizes: list[int], policy: Policy, use_deepagents: bool, log: Any
) -> tuple[list[Measurement], dict[str, float]]:
    results: list[Measurement] = []
    load_s: dict[str, float] = {}
    history: dict[tuple[str, str], dict[int, float]] = {}
    loaded = 0
    for n in sizes:
        with contextlib.ExitStack() as stack:
            ours_store, lg_store = setup.open_stores(stack)
            for label, store in (("ours", ours_store), ("langgraph", lg_store)):
                t0 = time.perf_counter()
                load(store, loaded, n)
                load_s[f"{label}@{n}"] = secs = time.perf_counter() - t0
                log(f"[{setup.name}] loaded {label} {loaded:,} -> {n:,} files in {secs:.1f}s")
        loaded = n
        setup.after_load()
        with contextlib.ExitStack() as stack:
            ours_store, lg_store = setup.open_stores(stack)
            results += measure_size(
                setup.name, n, ours_store, lg_store, policy, use_deepagents, history, log
            )
    return results, load_s


def measure_size(
    engine: str,
    n: int,
    ours_store: BaseStore,
    lg_store: BaseStore,
    policy: Policy,
    use_deepagents: bool,
    history: dict[tuple[str, str], dict[int, float]],
    log: Any,
) -> list[Measurement]:
    """Every operation at one size, through fresh stores."""
    results: list[Measurement] = []
    reset_targets(ours_store)
    reset_targets(lg_store)
    runners: list[Runner] = [Ours(ours_store), Baseline(lg_store)]
    if use_deepagents:
        runners.append(DeepAgents(lg_store))
    ops = {r.name: r.ops() for r in runners}
    for op in OPS:
        series = []
        for r in runners:
            m = Measurement(engine, n, op, r.name)
            results.append(m)
            guess = predicted_s(history.get((r.name, op), {}), n) if r.name != "ours" else None
            limit = policy.probe_s if (r.name, op) == ("baseline", "ls") else policy.max_call_s
            if guess is not None and guess > limit:
                m.note = f"skipped: predicted ~{guess:.0f} s per call"
                log(f"[{engine}] N={n:,} {r.name:10} {op:8} {m.note}")
                continue
            memory = op in (MEMORY_OPS if r.name == "ours" else BASELINE_MEMORY_OPS[r.name])
            series.append((m, ops[r.name][op], memory))
        measure_op(series, policy, policy.reps_single if op in SINGLE_OPS else policy.reps)
        for m, _, _ in series:
            assert m.median_ms is not None
            history.setdefault((m.impl, op), {})[n] = m.median_ms
            peak = f" peak {m.peak_kib:,.0f} KiB" if m.peak_kib is not None else ""
            log(
                f"[{engine}] N={n:,} {m.impl:10} {op:8} {m.median_ms:10.3f} ms "
                f"(n={m.reps}){peak} {m.note}"
            )
    return results


# -- report ----------------------------------------------------------------------------


@dataclass
class Target:
    engine: str
    name: str
    value: float | None
    limit: str
    passed: bool | None  # None: could not be checked (missing measurement)
    detail: str = ""


def _get(results: list[Measurement], engine: str, n: int, op: str, impl: str) -> Measurement | None:
    for m in results:
        if (m.engine, m.n, m.op, m.impl) == (engine, n, op, impl):
            return m
    return None


def _ms(m: Measurement | None) -> float | None:
    return None if m is None or m.median_ms is None else m.median_ms


def check_targets(results: list[Measurement], engines: list[str], sizes: list[int]) -> list[Target]:
    targets: list[Target] = []
    lo, hi = min(sizes), max(sizes)
    for engine in engines:
        if 10_000 in sizes:
            for op in SEARCH_OPS:
                ours = _ms(_get(results, engine, 10_000, op, "ours"))
                base = _ms(_get(results, engine, 10_000, op, "baseline"))
                ratio = base / ours if ours and base else None
                targets.append(
                    Target(
                        engine,
                        f"{op} @10k: baseline/ours",
                        ratio,
                        ">= 500x",
                        None if ratio is None else ratio >= 500,
                    )
                )
        if hi > lo:
            for op in SEARCH_OPS:
                # The largest growth from any size to any larger one: a dip at a middle
                # size must not hide growth after it.
                times = [_ms(_get(results, engine, n, op, "ours")) for n in sizes]
                growth, detail = None, ""
                if all(t is not None for t in times):
                    pairs = [
                        (times[j] / times[i], sizes[i], sizes[j])  # type: ignore[operator]
                        for i in range(len(sizes))
                        for j in range(i + 1, len(sizes))
                    ]
                    growth, a, b = max(pairs)
                    detail = f"largest growth {a:,} -> {b:,}; " + " -> ".join(
                        f"{_fmt_ms(t)} ms" for t in times
                    )
                targets.append(
                    Target(
                        engine,
                        f"{op}: ours growth {lo:,} .. {hi:,}",
                        growth,
                        "<= 3x",
                        None if growth is None else growth <= 3,
                        detail,
                    )
                )
        for op in SINGLE_OPS:
            for n in sizes:
                ours = _ms(_get(results, engine, n, op, "ours"))
                base = _ms(_get(results, engine, n, op, "baseline"))
                ratio = base / ours if ours and base else None
                da = _ms(_get(results, engine, n, op, "deepagents"))
                targets.append(
                    Target(
                        engine,
                        f"{op} @{n:,}: baseline/ours",
                        ratio,
                        ">= 0.9 (1x, 10% noise)",
                        None if ratio is None else ratio >= 0.9,
                        f"deepagents/ours {da / ours:.2f}x" if da and ours else "",
                    )
                )
        if hi > lo:
            for op in ("ls", "grep"):
                a = _get(results, engine, lo, op, "ours")
                b = _get(results, engine, hi, op, "ours")
                if a is None or b is None or a.peak_kib is None or b.peak_kib is None:
                    targets.append(Target(engine, f"{op}: ours peak memory flat", None, "", None))
                    continue
                # Flat: at most 1.5x (plus 64 KiB of slack for tiny allocations).
                ok = b.peak_kib <= 1.5 * a.peak_kib + 64
                targets.append(
                    Target(
                        engine,
                        f"{op}: ours peak KiB {lo:,} -> {hi:,}",
                        b.peak_kib,
                        f"<= 1.5 x {a.peak_kib:,.0f} + 64 KiB",
                        ok,
                        f"{a.peak_kib:,.0f} -> {b.peak_kib:,.0f} KiB",
                    )
                )
        for m in results:
            if m.engine == engine and m.impl == "ours" and m.wrong:
                targets.append(
                    Target(
                        engine, f"{m.op} @{m.n:,}: ours result", m.result, f"== {m.expected}", False
                    )
                )
    return targets


def _fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def _fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return "-"
    r = a / b
    return f"{r:,.0f}x" if r >= 10 else f"{r:.2f}x"


def render_table(results: list[Measurement], engines: list[str], sizes: list[int], da: bool) -> str:
    head = ["engine", "op", "N files", "ours ms", "baseline ms", "base/ours"]
    if da:
        head += ["deepagents ms", "da/ours"]
    head += ["ours peak KiB", "baseline peak KiB", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for engine in engines:
        for op in OPS:
            for n in sizes:
                o = _get(results, engine, n, op, "ours")
                b = _get(results, engine, n, op, "baseline")
                d = _get(results, engine, n, op, "deepagents")
                if o is None:
                    continue
                notes = []
                base_cell = _fmt_ms(_ms(b))
                if b is not None and b.median_ms is not None and b.reps < o.reps:
                    base_cell += f" (n={b.reps})"
                if b is not None and b.note:
                    notes.append("baseline: " + b.note)
                if o.note:
                    notes.append("ours: " + o.note)
                row = [engine, op, f"{n:,}", _fmt_ms(_ms(o)), base_cell, _fmt_ratio(_ms(b), _ms(o))]
                if da:
                    da_cell = _fmt_ms(_ms(d))
                    if d is not None and d.median_ms is not None and d.reps < o.reps:
                        da_cell += f" (n={d.reps})"
                    if d is not None and d.note:
                        notes.append("deepagents: " + d.note)
                    row += [da_cell, _fmt_ratio(_ms(d), _ms(o))]
                row += [
                    "-" if o.peak_kib is None else f"{o.peak_kib:,.0f}",
                    "-" if b is None or b.peak_kib is None else f"{b.peak_kib:,.0f}",
                    "; ".join(notes),
                ]
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def render_targets(targets: list[Target]) -> str:
    out = []
    for t in targets:
        status = {True: "PASS", False: "FAIL", None: "N/A "}[t.passed]
        if t.value is None:
            value = "not measured"
        elif "KiB" in t.name:
            value = f"{t.value:,.0f} KiB"
        else:
            value = f"{t.value:,.2f}x" if t.value < 10 else f"{t.value:,.0f}x"
        line = f"{status}  {t.engine:8} {t.name:38} {value:>14}  (target {t.limit})"
        out.append(line + (f"  [{t.detail}]" if t.detail else ""))
    return "\n".join(out)


def machine_facts() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.0f} GiB"
    versions = {}
    for pkg in (
        "deepmemory",
        "langgraph",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "psycopg",
        "deepagents",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    # Which code was measured: the commit, and a digest of the stores' sources (which may
    # be uncommitted work in progress).
    src = Path(__file__).resolve().parent.parent / "src" / "deepmemory"
    digest = hashlib.sha256()
    for path in sorted([*src.glob("stores/*.py"), *src.glob("backends/*.py")]):
        digest.update(path.read_bytes())
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "sources_sha256": digest.hexdigest()[:12],
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated numbers of files (each >= 1000)",
    )
    p.add_argument("--engines", default="sqlite,postgres", help="sqlite, postgres or both")
    p.add_argument("--quick", action="store_true", help="only 1,000 and 10,000 files")
    p.add_argument("--reps", type=int, default=7, help="timed calls per ls/glob/grep")
    p.add_argument("--reps-single", type=int, default=51, help="timed calls per read/write/edit")
    p.add_argument(
        "--max-call-seconds",
        type=float,
        default=60.0,
        help="skip a baseline call predicted to take longer than this",
    )
    p.add_argument(
        "--probe-seconds",
        type=float,
        default=240.0,
        help="but measure the baseline's ls once if predicted under this",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--pg-url", default=os.environ.get("DEEPMEMORY_BENCH_POSTGRES_URL", DEFAULT_PG_URL)
    )
    p.add_argument(
        "--no-history",
        action="store_true",
        help="measure our stores with revision history off (keep_revisions=0)",
    )
    p.add_argument(
        "--no-deepagents",
        action="store_true",
        help="do not measure deepagents' StoreBackend even if installed",
    )
    args = p.parse_args(argv)
    sizes = [1000, 10_000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    if any(n < MIN_SIZE or n % FILES_PER_DIR for n in sizes):
        p.error(f"sizes must be multiples of {FILES_PER_DIR} and at least {MIN_SIZE}")
    args.size_list = sorted(set(sizes))
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(args.engine_list) - {"sqlite", "postgres"}:
        p.error("engines are sqlite and postgres")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    policy = Policy(
        reps=args.reps,
        reps_single=args.reps_single,
        max_call_s=args.max_call_seconds,
        probe_s=args.probe_seconds,
    )
    use_da = deepagents_available() and not args.no_deepagents
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - started:7.1f}s {msg}", file=sys.stderr, flush=True)

    facts = machine_facts()
    log(
        f"machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory']}; "
        f"deepagents: {'measured' if use_da else 'skipped (not installed or --no-deepagents)'}"
    )
    results: list[Measurement] = []
    load_s: dict[str, dict[str, float]] = {}
    engine_facts: dict[str, dict[str, str]] = {}
    for engine in args.engine_list:
        keep = 0 if args.no_history else 50
        cm = sqlite_engine(keep) if engine == "sqlite" else postgres_engine(args.pg_url, keep)
        with cm as setup:
            engine_facts[engine] = setup.facts
            got, load_s[engine] = run_engine(setup, args.size_list, policy, use_da, log)
            results.extend(got)
    targets = check_targets(results, args.engine_list, args.size_list)
    total_s = time.perf_counter() - started

    print(
        f"\n## Results ({facts['date']}; {facts['cpu']}, {facts['cores']} cores, "
        f"{facts['memory']} RAM; Python {facts['python']}, SQLite {facts['sqlite']}"
        + (
            f", PostgreSQL {engine_facts['postgres']['postgres']}"
            if "postgres" in engine_facts
            else ""
        )
        + ")\n"
    )
    print(
        f"Median milliseconds per call: {args.reps} calls (ls/glob/grep) or {args.reps_single}"
        " (read/write/edit) after a warm-up of up to 25 calls (2 s), implementations taking"
        " turns call by call; fresh store objects for every size. Slow baseline calls:"
        " fewer (n=...), the first call included, no warm-up. Peak = tracemalloc peak of"
        " Python allocations during one call.\n"
    )
    print(render_table(results, args.engine_list, args.size_list, use_da))
    if not use_da:
        print("\n(deepagents' StoreBackend was not measured: not installed, or --no-deepagents.)")
    print("\n## Targets\n")
    print(render_targets(targets))
    print(
        f"\nLoad times (s): {json.dumps({e: {k: round(v, 1) for k, v in d.items()} for e, d in load_s.items()})}"
    )
    print(f"Total run time: {total_s / 60:.1f} min")
    if args.json:
        payload = {
            "machine": facts,
            "engines": engine_facts,
            "args": {
                "sizes": args.size_list,
                "engines": args.engine_list,
                "reps": args.reps,
                "max_call_seconds": args.max_call_seconds,
                "probe_seconds": args.probe_seconds,
                "deepagents": use_da,
            },
            "corpus": {
                "namespace": list(NAMESPACE),
                "files_per_dir": FILES_PER_DIR,
                "ls_dir": LS_DIR,
                "glob": GLOB_ALL,
                "glob_dir": list(GLOB_DIR),
                "grep": LITERAL,
                "planted_files": 20,
            },
            "results": [asdict(m) for m in results],
            "targets": [asdict(t) for t in targets],
            "load_seconds": load_s,
            "total_seconds": total_s,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0 if all(t.passed is not False for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
