"""Benchmark: deepagents' file tools over its own ``StoreBackend`` against ours, 10,000 files.

Usage::

    python bench/bench_deepagents.py [--files 10000] [--engines sqlite,postgres]
                                     [--reps 5] [--pg-url URL] [--json PATH]

One namespace holds ``files`` memory files (``/notes/n-00001.md`` ...) and 100 in
``/hot/``; a few of them contain the word ``needle``. On each engine, the same store
answers through deepagents' ``StoreBackend`` (``deepagents.backends.StoreBackend``) and
through ours (``deepmemory.integrations.deepagents.StoreBackend``), calling the tools of
deepagents' ``FilesystemMiddleware`` (``ls``, ``glob``, ``grep``), so both sides pay the
same tool layer. Every answer must be the same on both sides. Reported: the median time
of ``reps`` calls per side and their ratio. Target (exit status 1 if any fails): ours at
least 500x faster than deepagents' for ``ls``, ``glob`` and ``grep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepagents.backends import StoreBackend as TheirStoreBackend
from deepagents.middleware.filesystem import FilesystemMiddleware
from langgraph.store.base import PutOp

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import DEFAULT_PG_URL, open_engine

from deepmemory.integrations.deepagents import StoreBackend as OurStoreBackend

NS = ("bench", "deepagents")
TARGET = 500.0
CALLS: dict[str, dict[str, Any]] = {
    "ls": {"path": "/hot"},
    "glob": {"pattern": "*.md", "path": "/hot"},
    "grep": {"pattern": "needle", "path": "/hot"},
}


def load(store: Any, files: int) -> None:
    ops = []
    for n in range(files):
        text = f"# note {n}\n" + "lorem ipsum dolor sit amet\n" * 8
        ops.append(PutOp(NS, f"/notes/n-{n:05d}.md", {"content": text, "encoding": "utf-8"}))
    for n in range(100):
        text = f"# hot {n}\n" + ("needle here\n" if n % 10 == 0 else "") + "plain line\n" * 5
        ops.append(PutOp(NS, f"/hot/h-{n:03d}.md", {"content": text, "encoding": "utf-8"}))
    for start in range(0, len(ops), 1000):
        store.batch(ops[start : start + 1000])


def tools(backend: Any) -> dict[str, Callable[..., Any]]:
    by_name = {tool.name: tool for tool in FilesystemMiddleware(backend=backend).tools}
    return {name: by_name[name].func for name in CALLS}  # type: ignore[misc]


def timed(call: Callable[[], Any], reps: int) -> tuple[float, Any]:
    answers, times = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        answers.append(call())
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, answers[-1]


def run(engine_name: str, files: int, reps: int, pg_url: str, log: Callable[[str], None]) -> dict:
    results: dict[str, Any] = {}
    with open_engine(engine_name, pg_url) as engine, engine.open_store() as store:
        t0 = time.perf_counter()
        load(store, files)
        if engine.vacuum is not None:
            engine.vacuum()
        log(f"[{engine_name}] loaded {files + 100:,} files in {time.perf_counter() - t0:.1f} s")
        sides = {
            "deepagents": tools(TheirStoreBackend(store=store, namespace=lambda _rt: NS)),
            "ours": tools(OurStoreBackend(store=store, namespace=lambda _rt: NS)),
        }
        runtime = _runtime()
        for name, kwargs in CALLS.items():
            got = {}
            for side, funcs in sides.items():
                call = funcs[name]
                ms, answer = timed(
                    lambda call=call, kwargs=kwargs: call(runtime=runtime, **kwargs), reps
                )
                got[side] = (ms, answer)
            same = _normal(got["ours"][1]) == _normal(got["deepagents"][1])
            ratio = got["deepagents"][0] / got["ours"][0]
            results[name] = {
                "deepagents_ms": round(got["deepagents"][0], 3),
                "ours_ms": round(got["ours"][0], 3),
                "ratio": round(ratio, 1),
                "same_answer": same,
            }
            log(
                f"[{engine_name}] {name:5} deepagents {got['deepagents'][0]:9.2f} ms  "
                f"ours {got['ours'][0]:7.2f} ms  {ratio:8.1f}x  same answer: {same}"
            )
    return results


def _runtime() -> Any:
    from langchain.tools import ToolRuntime

    return ToolRuntime(
        state={}, context=None, config={}, stream_writer=None, tool_call_id="t", store=None
    )


def _normal(answer: Any) -> Any:
    """A tool's answer with the order among files set aside: the paths it names,
    sorted, and its lines with each quoted path replaced by a placeholder, sorted (the
    order among files with equal times is each store's own)."""
    text = answer if isinstance(answer, str) else str(getattr(answer, "content", answer))
    quoted = r"'(/[^']+)'"
    shape = sorted(re.sub(quoted, "'<path>'", text).splitlines())
    return shape, sorted(re.findall(quoted, text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--pg-url", default=os.environ.get("DEEPMEMORY_BENCH_POSTGRES_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    results = {
        name: run(name, args.files, args.reps, args.pg_url, print)
        for name in args.engines.split(",")
    }
    failed = [
        f"{engine} {op}: {r['ratio']}x, same answer: {r['same_answer']}"
        for engine, ops in results.items()
        for op, r in ops.items()
        if r["ratio"] < TARGET or not r["same_answer"]
    ]
    print("\nTargets (ours at least 500x faster, same answers):")
    print("PASS" if not failed else "FAIL\n  " + "\n  ".join(failed))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
