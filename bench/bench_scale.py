"""Benchmark: a memory operation costs what its answer costs, not what the memory holds.

Usage::

    python bench/bench_scale.py [--engines sqlite,postgres] [--fillers 20000,100000] [--quick]
                                [--json PATH] [--pg-url URL]
                                [--concurrency-only | --no-concurrency]

Two users share one store (``SQLiteStore`` in a temporary directory, ``PostgresStore`` in
a database of its own, dropped at the end), each in its own namespace. "small" holds
103 files: 100 in ``/hot/`` (10 match ``f1?.md``, 4 hold the literal ``ZEPHYR-4471``)
and 3 elsewhere. "big" holds the same plus 20,000, then 100,000 fillers of ~1-2 KB
(``/cold/dNNNN/f1NNNNNN.md``: the glob's prefix, never a match), loaded incrementally by
``store.batch`` of 1,000 ``PutOp``s. At each size both users take turns call by call
(median of 15 calls or 7 agent turns after a warm-up; every result checked) through:
agent turns (``create_deep_agent``, scripted model, memory map on) that ``read_file``
``/memories/hot/f10.md``, or ``edit_file`` ``f11.md`` / ``f12.md`` in turn (the map the
model then sees must list the edited file first), then answer; ``glob("f1?.md", "/hot")``;
``glob("**/f1?.md", "/")``; ``grep("ZEPHYR-4471")``. The agents' memory is size-limited
as ``create_deep_agent`` limits it by default (``LimitsBackend``: every write checks the
namespace's total), with a total limit of 1 GiB instead of 100 MiB, which big's
100,000 fillers (~150 MB) exceed.
PostgreSQL is measured after ``VACUUM ANALYZE``, its grep also right after the load.
Targets (exit status 1 if any fails): big/small <= 2 everywhere; PostgreSQL big's grep
right after a load <= 3x its time once vacuumed.

Concurrency (PostgreSQL): 500 asyncio tasks on one event loop, 60% ``aread``, 40%
``aedit`` (each turns one distinct ``slot-NNN: todo`` of 10 files into ``done``), through
ours (``StoreBackend`` over ``PostgresStore``) and deepagents' ``StoreBackend`` over
LangGraph's ``AsyncPostgresStore`` (if installed), each with a pool of up to 10
connections: ops/s (median of 3 rounds on fresh files, after a warm-up round) and lost
updates (edits that reported success, slot not ``done``). Targets: ours at least as
fast; ours loses none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.store.base import BaseStore, PutOp
from psycopg import sql
from psycopg.conninfo import make_conninfo

from deepmemory import create_deep_agent
from deepmemory.backends import CompositeBackend, LimitsBackend, StateBackend, StoreBackend
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing.scripted import ScriptedChatModel, calls, tool_call

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
USERS = ("small", "big")
NAMESPACES = {"small": ("users", "small"), "big": ("users", "big")}
Namespace = tuple[str, ...]

# -- the memory ------------------------------------------------------------------------
# /hot/f10.md .. f19.md match "f1?.md"; /hot/f100.md .. f189.md share the prefix but not
# the pattern, as do the fillers. Body text is lowercase pseudo-words, so the upper-case
# literal occurs only where planted.
HOT = [f"/hot/f1{d}.md" for d in range(10)] + [f"/hot/f1{k:02d}.md" for k in range(90)]
OTHERS = ["/profile.md", "/projects/roadmap.md", "/journal/2026-11.md"]
LITERAL = "ZEPHYR-4471"
LITERAL_FILES = ["/hot/f13.md", "/hot/f121.md", "/hot/f142.md", "/hot/f187.md"]
READ_PATH = "/hot/f10.md"
# Edit turns alternate between two files, so a map not rebuilt after an edit shows the
# other one as the newest file; each edit swaps the file's status line.
EDIT_PATHS = ("/hot/f11.md", "/hot/f12.md")
EDIT_MARKS = ("status: open", "status: closed")
MEMORY_LIMIT = 2**30  # bytes under /memories/: the default 100 MiB, raised above big's fillers
MAP_HEADING = "What your long-term memory holds now"
FILLERS_PER_DIR = 100

_SYLLABLES = "ka lo mi ren tus va bel dor fin gar hul jex kin lum mor nas pel qui rof sal".split()
_WORDS = sorted({"".join(random.Random(k).choices(_SYLLABLES, k=1 + k % 3)) for k in range(3000)})


def body(rng: random.Random, target_bytes: int) -> str:
    """About ``target_bytes`` of lowercase text in lines of ten words."""
    lines, size = [], 0
    while size < target_bytes:
        lines.append(" ".join(rng.choices(_WORDS, k=10)))
        size += len(lines[-1]) + 1
    return "\n".join(lines) + "\n"


def memory_files() -> dict[str, str]:
    """The 103 files both users hold."""
    rng = random.Random(7)
    files = {}
    for path in HOT + OTHERS:
        files[path] = f"# note {path}\n" + body(rng, 1200)
        if path in LITERAL_FILES:
            files[path] += f"the build id is {LITERAL} here\n"
        if path in EDIT_PATHS:
            files[path] += EDIT_MARKS[0] + "\n"
    return files


FILES = memory_files()
GLOB_MATCHES = sorted(HOT[:10])
GREP_MATCHES = sorted(
    (path, number)
    for path in LITERAL_FILES
    for number, line in enumerate(FILES[path].splitlines(), start=1)
    if LITERAL in line
)


def fillers(start: int, stop: int) -> Iterator[tuple[Namespace, str, str]]:
    rng = random.Random(start)
    for i in range(start, stop):
        key = f"/cold/d{i // FILLERS_PER_DIR:04d}/f1{i:06d}.md"
        yield NAMESPACES["big"], key, f"# filler {i}\n" + body(rng, 1000 + rng.randrange(1000))


def load(store: BaseStore, files: Iterable[tuple[Namespace, str, str]]) -> None:
    """The bulk path: ``store.batch`` of 1,000 PutOps at a time."""
    now = datetime.now(UTC).isoformat()
    value = {"encoding": "utf-8", "created_at": now, "modified_at": now}
    ops = (PutOp(ns, key, {"content": text, **value}, index=False) for ns, key, text in files)
    while batch := list(itertools.islice(ops, 1000)):
        store.batch(batch)


# -- the measured calls ----------------------------------------------------------------
# Each returns a value compared with OPS[op][1]: sorted paths, sorted (path, line) pairs,
# or "ok" for an agent turn (else what went wrong).


def agent_turn(store: BaseStore, user: str, mode: str) -> Callable[[], str]:
    """One user's agent; each call is one turn in a new thread: a tool call, then an answer."""
    namespace = NAMESPACES[user]
    edited: list[str] = []  # the file each edit turn edited

    def policy(messages: list[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage("Done.")
        if mode == "read":
            return calls(tool_call("read_file", file_path="/memories" + READ_PATH))
        k = len(edited)
        edited.append("/memories" + EDIT_PATHS[k % 2])
        old, new = EDIT_MARKS if k // 2 % 2 == 0 else EDIT_MARKS[::-1]
        args = {"file_path": edited[-1], "old_string": old, "new_string": new}
        return calls(tool_call("edit_file", **args))

    model = ScriptedChatModel(replies=policy)
    agent = create_deep_agent(
        model=model,
        store=store,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt),
            routes={
                "/memories/": LimitsBackend(
                    StoreBackend(rt, namespace=namespace), max_total_bytes=MEMORY_LIMIT
                )
            },
        ),
    )

    def turn() -> str:
        before = len(model.received)
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        out = agent.invoke({"messages": [HumanMessage("Check my notes.")]}, config=config)
        if len(model.received) - before != 2:
            return f"{len(model.received) - before} model calls, expected 2"
        system = model.received[-1][0]
        if system.type != "system" or MAP_HEADING not in system.text:
            return "the memory map did not reach the model"
        newest = system.text.split(MAP_HEADING, 1)[1].splitlines()[1]  # newest first
        if mode == "write" and not newest.startswith(f"- {edited[-1]} "):
            return f"the map was not rebuilt after the edit: it starts with {newest!r}"
        results = [m.text for m in out["messages"] if isinstance(m, ToolMessage)]
        expected = f"# note {READ_PATH}" if mode == "read" else "Edited "
        if len(results) != 1 or expected not in results[0]:
            return f"tool results {results!r:.200}"
        return "ok"

    return turn


def search_calls(store: BaseStore, user: str) -> dict[str, Callable[[], Any]]:
    backend = StoreBackend(store=store, namespace=NAMESPACES[user])

    def glob(pattern: str, path: str) -> Any:
        result = backend.glob(pattern, path)
        return result.error or sorted(f.path for f in result.files)

    def grep() -> Any:
        result = backend.grep(LITERAL, "/")
        return result.error or sorted((m.path, m.line) for m in result.matches)

    return {
        "glob_dir": lambda: glob("f1?.md", "/hot"),
        "glob_tree": lambda: glob("**/f1?.md", "/"),
        "grep": grep,
    }


# op: (what it is, the expected result of every call)
OPS = {
    "turn_read": ("agent turn, read_file", "ok"),
    "turn_write": ("agent turn, edit_file", "ok"),
    "glob_dir": ('glob("f1?.md", "/hot")', GLOB_MATCHES),
    "glob_tree": ('glob("**/f1?.md", "/")', GLOB_MATCHES),
    "grep": ('grep("ZEPHYR-4471", "/")', GREP_MATCHES),
    "grep_after_load": ("grep, right after the load", GREP_MATCHES),
}
RATIO_OPS = ["turn_read", "turn_write", "glob_dir", "glob_tree", "grep"]


# -- timing ----------------------------------------------------------------------------


@dataclass
class Measurement:
    engine: str
    fillers: int
    op: str
    user: str
    median_ms: float = 0.0
    samples_ms: list[float] = field(default_factory=list)
    warmup_calls: int = 0
    wrong: int = 0  # calls (warm-up included) whose result was not the expected one
    example: str = ""  # one wrong result


def measure(
    engine: str, n: int, op: str, fns: dict[str, Callable[[], Any]], reps: int, warmup: int
) -> list[Measurement]:
    """Time ``fns`` (one per user): a warm-up, then the users take turns call by call.

    The warm-up (``warmup`` calls, fewer if they take over 2 s, at least one) brings the
    connections to a long-running process's steady state: psycopg prepares a statement
    from its 5th run. Who goes first alternates between rounds.
    """
    got = {user: Measurement(engine, n, op, user) for user in fns}

    def call(user: str) -> float:
        t0 = time.perf_counter()
        result = fns[user]()
        ms = (time.perf_counter() - t0) * 1000
        if result != OPS[op][1]:
            got[user].wrong += 1
            got[user].example = repr(result)[:200]
        return ms

    for user, m in got.items():
        spent = 0.0
        while m.warmup_calls < warmup and (m.warmup_calls == 0 or spent < 2000):
            spent += call(user)
            m.warmup_calls += 1
    order = list(fns)
    for _ in range(reps):
        for user in order:
            got[user].samples_ms.append(call(user))
        order.reverse()
    for m in got.values():
        m.median_ms = statistics.median(m.samples_ms)
    return list(got.values())


# -- engines ---------------------------------------------------------------------------


@dataclass
class Engine:
    name: str
    open_store: Callable[[], Any]  # a fresh store (new connections), used with ``with``
    vacuum: Callable[[], None] | None = None


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A database of its own on the server, dropped afterwards; yields its URL."""
    dbname = f"deepmemory_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield make_conninfo(url, dbname=dbname)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(dbname)))


@contextlib.contextmanager
def open_engine(name: str, pg_url: str) -> Iterator[Engine]:
    if name == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="deepmemory-bench-"))
        try:
            yield Engine("sqlite", lambda: SQLiteStore(tmp / "memory.db"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    with postgres_database(pg_url) as db_url:

        def vacuum() -> None:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")

        yield Engine("postgres", lambda: PostgresStore(connection_string=db_url), vacuum)


def run_engine(
    engine: Engine, sizes: list[int], args: argparse.Namespace, log: Callable[[str], None]
) -> tuple[list[Measurement], dict[str, float]]:
    """Load incrementally; at each size measure through fresh stores (new connections)."""
    results: list[Measurement] = []
    load_s: dict[str, float] = {}

    def measured(got: list[Measurement]) -> None:
        for m in got:
            wrong = f"  WRONG in {m.wrong} calls, e.g. {m.example}" if m.wrong else ""
            log(f"[{m.engine}] {m.fillers:,} {m.op:15} {m.user:5} {m.median_ms:9.2f} ms{wrong}")
        results.extend(got)

    with engine.open_store() as store:
        both = [(NAMESPACES[u], path, text) for u in USERS for path, text in FILES.items()]
        load(store, both)
    loaded = 0
    for n in sizes:
        with engine.open_store() as store:
            t0 = time.perf_counter()
            load(store, fillers(loaded, n))
            load_s[str(n)] = round(time.perf_counter() - t0, 1)
        log(f"[{engine.name}] loaded fillers {loaded:,} -> {n:,} in {load_s[str(n)]}s")
        loaded = n
        if engine.vacuum is not None:
            with engine.open_store() as store:
                fns = {u: search_calls(store, u)["grep"] for u in USERS}
                measured(measure(engine.name, n, "grep_after_load", fns, args.reps, 25))
            engine.vacuum()
        with engine.open_store() as store:
            # The edit turns' files as loaded: "status: open".
            load(store, [(NAMESPACES[u], p, FILES[p]) for u in USERS for p in EDIT_PATHS])
            per_user = {u: search_calls(store, u) for u in USERS}
            for op in ("glob_dir", "glob_tree", "grep"):
                fns = {u: per_user[u][op] for u in USERS}
                measured(measure(engine.name, n, op, fns, args.reps, 25))
            for op, mode in (("turn_read", "read"), ("turn_write", "write")):
                fns = {u: agent_turn(store, u, mode) for u in USERS}
                measured(measure(engine.name, n, op, fns, args.agent_reps, 3))
    return results, load_s


# -- concurrency (PostgreSQL) ----------------------------------------------------------

CHECKLISTS, SLOTS, EDIT_SHARE = 10, 60, 0.4
CHECKLIST = "/tasks/list-{:02d}.md"


def plan_tasks(tasks: int, seed: int) -> list[tuple[str, int, int]]:
    """``(kind, checklist, slot)``: each edit owns a distinct slot; reads pick any list."""
    rng = random.Random(seed)
    edits = min(int(tasks * EDIT_SHARE), CHECKLISTS * SLOTS)
    slots = rng.sample([(k, s) for k in range(CHECKLISTS) for s in range(SLOTS)], edits)
    plan = [("edit", k, s) for k, s in slots]
    plan += [("read", rng.randrange(CHECKLISTS), -1) for _ in range(tasks - edits)]
    rng.shuffle(plan)
    return plan


async def run_round(
    side: str, backend: Any, store: Any, ns: Namespace, plan: list[tuple[str, int, int]]
) -> dict[str, Any]:
    """One round on fresh files; lost: edits that reported success but left no ``done``."""
    for k in range(CHECKLISTS):
        text = f"# checklist {k}\n" + "".join(f"slot-{s:03d}: todo\n" for s in range(SLOTS))
        if error := (await backend.awrite(CHECKLIST.format(k), text)).error:
            raise RuntimeError(f"{side}: writing {CHECKLIST.format(k)}: {error}")

    async def one(kind: str, k: int, slot: int) -> str | None:
        """None on success, else the error."""
        if kind == "read":
            return (await backend.aread(CHECKLIST.format(k))).error
        old, new = f"slot-{slot:03d}: todo", f"slot-{slot:03d}: done"
        return (await backend.aedit(CHECKLIST.format(k), old, new)).error

    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(one(*task) for task in plan), return_exceptions=True)
    wall = time.perf_counter() - t0
    done = set()
    for k in range(CHECKLISTS):
        content = (await store.aget(ns, CHECKLIST.format(k))).value["content"]
        done |= {(k, s) for s in range(SLOTS) if f"slot-{s:03d}: done" in content}
    failed = [(task[0], o) for task, o in zip(plan, outcomes, strict=True) if o is not None]
    edited = [t for t, o in zip(plan, outcomes, strict=True) if o is None and t[0] == "edit"]
    return {
        "ops_per_s": round(len(plan) / wall),
        "edits": sum(kind == "edit" for kind, _, _ in plan),
        "lost": sum((k, s) not in done for _, k, s in edited),
        "failed_reads": sum(kind == "read" for kind, _ in failed),
        "failed_edits": sum(kind == "edit" for kind, _ in failed),
        "example_error": repr(failed[0][1])[:200] if failed else "",
    }


async def run_concurrency(
    db_url: str, tasks: int, rounds: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """A warm-up round, then ``rounds`` measured ones; the sides alternate going first."""
    sides: dict[str, tuple[Any, Callable[[Namespace], Any]]] = {}
    skipped = ""
    async with contextlib.AsyncExitStack() as stack:
        ours = await stack.enter_async_context(
            PostgresStore(connection_string=db_url, max_connections=10)
        )
        sides["ours"] = (ours, lambda ns: StoreBackend(store=ours, namespace=ns))
        try:
            from deepagents.backends import StoreBackend as DeepAgentsBackend
        except ImportError as exc:
            skipped = f"deepagents is not importable ({exc}): pip install deepagents"
            log(f"[concurrency] skipping deepagents: {skipped}")
        else:
            from langgraph.store.postgres.aio import AsyncPostgresStore
            from langgraph.store.postgres.base import PoolConfig

            pool = PoolConfig(min_size=1, max_size=10)  # as ours: up to 10 connections
            theirs = await stack.enter_async_context(
                AsyncPostgresStore.from_conn_string(db_url, pool_config=pool)
            )
            await theirs.setup()
            sides["deepagents"] = (
                theirs,
                lambda ns: DeepAgentsBackend(store=theirs, namespace=lambda _rt: ns),
            )
        measured: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        order = list(sides)
        for r in range(rounds + 1):
            plan = plan_tasks(tasks, seed=r)
            for side in order:
                store, make_backend = sides[side]
                ns = ("bench", "concurrency", side, f"round-{r}")  # fresh files every round
                got = await run_round(side, make_backend(ns), store, ns, plan)
                log(f"[concurrency] {f'round {r}' if r else 'warm-up'} {side:10} {got}")
                if r:
                    measured[side].append(got)
            order.reverse()
    summary = {
        side: {
            "ops_per_s": statistics.median(x["ops_per_s"] for x in got),
            **{
                k: max(x[k] for x in got) for k in ("edits", "lost", "failed_edits", "failed_reads")
            },
            "rounds": got,
        }
        for side, got in measured.items()
    }
    return {"tasks": tasks, "edit_share": EDIT_SHARE, "sides": summary, "skipped": skipped}


# -- report ----------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    value: float | None
    limit: str
    passed: bool | None  # None: not measured


def check_targets(results: list[Measurement], conc: dict[str, Any] | None) -> list[Target]:
    median = {(m.engine, m.fillers, m.op, m.user): m.median_ms for m in results}
    targets: list[Target] = []

    def ratio(name: str, a: float | None, b: float | None, limit: float) -> None:
        value = a / b if a is not None and b else None
        passed = None if value is None else value <= limit
        targets.append(Target(name, value, f"<= {limit:g}x", passed))

    for engine, n in dict.fromkeys((m.engine, m.fillers) for m in results):
        for op in RATIO_OPS:
            small, big = (median.get((engine, n, op, u)) for u in USERS)
            ratio(f"{engine} @{n:,}: {OPS[op][0]}, big/small", big, small, 2)
        if engine == "postgres":
            after, vacuumed = (
                median.get((engine, n, op, "big")) for op in ("grep_after_load", "grep")
            )
            ratio(f"{engine} @{n:,}: big grep right after load / vacuumed", after, vacuumed, 3)
    for m in results:
        if m.wrong:
            name = f"{m.engine} @{m.fillers:,}: {OPS[m.op][0]}, {m.user}'s results"
            targets.append(Target(name, m.wrong, "0 wrong", False))
    if conc is not None:
        ours, theirs = conc["sides"]["ours"], conc["sides"].get("deepagents")
        value = ours["ops_per_s"] / theirs["ops_per_s"] if theirs else None
        passed = None if value is None else value >= 1
        targets.append(Target("concurrency: ops/s, ours/deepagents", value, ">= 1x", passed))
        lost = ours["lost"]
        targets.append(Target("concurrency: ours' lost updates", lost, "== 0", lost == 0))
    return targets


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = [head, ["---"] * len(head), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def render_table(results: list[Measurement]) -> str:
    rows: dict[tuple[str, int, str], dict[str, Measurement]] = {}
    for m in results:
        rows.setdefault((m.engine, m.fillers, m.op), {})[m.user] = m
    cells = []
    for (engine, n, op), got in rows.items():
        small, big = got["small"].median_ms, got["big"].median_ms
        notes = "; ".join(f"{u}: WRONG in {m.wrong} calls" for u, m in got.items() if m.wrong)
        ratio = f"{big / small:.2f}x"
        cells.append([engine, f"{n:,}", OPS[op][0], f"{small:.2f}", f"{big:.2f}", ratio, notes])
    head = ["engine", "fillers", "op", "small ms", "big ms", "big/small", "notes"]
    return markdown(head, cells)


def render_concurrency(conc: dict[str, Any]) -> str:
    head = ["side", "ops/s (median)", "lost updates", "failed edits", "failed reads"]
    rows = [
        [side, f"{s['ops_per_s']:,.0f}", f"{s['lost']} of {s['edits']} edits"]
        + [str(s["failed_edits"]), str(s["failed_reads"])]
        for side, s in conc["sides"].items()
    ]
    skipped = f"\n\ndeepagents skipped: {conc['skipped']}" if conc["skipped"] else ""
    return markdown(head, rows) + skipped


def render_targets(targets: list[Target]) -> str:
    out = []
    for t in targets:
        status = {True: "PASS", False: "FAIL", None: "N/A "}[t.passed]
        value = "not measured" if t.value is None else f"{t.value:,.2f}"
        value = f"{t.value:,}" if isinstance(t.value, int) else value
        out.append(f"{status}  {t.name:60} {value:>12}  (target {t.limit})")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", default="sqlite,postgres", help="sqlite, postgres or both")
    p.add_argument(
        "--fillers", default="20000,100000", help="big's filler counts, loaded incrementally"
    )
    p.add_argument("--quick", action="store_true", help="20,000 fillers only")
    p.add_argument("--reps", type=int, default=15, help="timed glob/grep calls per user")
    p.add_argument("--agent-reps", type=int, default=7, help="timed agent turns per user")
    p.add_argument("--tasks", type=int, default=500, help="concurrent tasks per round")
    p.add_argument("--rounds", type=int, default=3, help="measured concurrency rounds")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("DEEPMEMORY_BENCH_POSTGRES_URL", DEFAULT_PG_URL),
        help="server to create the benchmark's databases on (DEEPMEMORY_BENCH_POSTGRES_URL)",
    )
    only = p.add_mutually_exclusive_group()
    only.add_argument("--concurrency-only", action="store_true", help="only the concurrency part")
    only.add_argument("--no-concurrency", action="store_true", help="skip the concurrency part")
    args = p.parse_args(argv)
    sizes = [20_000] if args.quick else [int(s) for s in args.fillers.split(",") if s]
    if any(n < 1 or n % FILLERS_PER_DIR for n in sizes):
        p.error(f"filler counts must be positive multiples of {FILLERS_PER_DIR}")
    args.sizes = sorted(set(sizes))
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(args.engine_list) - {"sqlite", "postgres"}:
        p.error("engines are sqlite and postgres")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - started:7.1f}s {msg}", file=sys.stderr, flush=True)

    engines = [] if args.concurrency_only else args.engine_list
    results: list[Measurement] = []
    load_s: dict[str, dict[str, float]] = {}
    for name in engines:
        with open_engine(name, args.pg_url) as engine:
            got, load_s[name] = run_engine(engine, args.sizes, args, log)
            results += got
    conc = None
    if args.concurrency_only or (not args.no_concurrency and "postgres" in args.engine_list):
        with postgres_database(args.pg_url) as db_url:
            conc = asyncio.run(run_concurrency(db_url, args.tasks, args.rounds, log))
    targets = check_targets(results, conc)
    total_s = time.perf_counter() - started

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if results:
        print(
            f"\n## Scale ({when}): median ms of {args.reps} calls (glob/grep) or "
            f"{args.agent_reps} turns per user after a warm-up, users alternating\n"
        )
        print(render_table(results))
        print(f"\nFiller load times (s): {json.dumps(load_s)}")
    if conc is not None:
        print(
            f"\n## Concurrency: {args.tasks} asyncio tasks, {1 - EDIT_SHARE:.0%} aread / "
            f"{EDIT_SHARE:.0%} aedit, median of {args.rounds} rounds\n"
        )
        print(render_concurrency(conc))
    elif not args.no_concurrency:
        print("\n(Concurrency not measured: it runs on PostgreSQL; add postgres to --engines.)")
    print("\n## Targets\n")
    print(render_targets(targets))
    print(f"\nTotal run time: {total_s / 60:.1f} min")
    if args.json:
        payload = {
            "date": when,
            "args": vars(args),
            "results": [asdict(m) for m in results],
            "load_seconds": load_s,
            "concurrency": conc,
            "targets": [asdict(t) for t in targets],
            "total_seconds": total_s,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(t.passed is not False for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
