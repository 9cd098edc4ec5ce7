"""Benchmark: recall by meaning over memory files (``semantic_search``) on our stores.

Usage::

    python bench/bench_recall.py [--engines sqlite,postgres] [--dims 64]
                                 [--files 1000,10000] [--chunks 1000,10000,100000]
                                 [--reps 5] [--pg-url URL] [--json PATH]

The embedder costs nothing: vectors are computed before the timings from each text's
checksum and looked up in a dict, so only our own work is measured (cutting passages,
storing vectors, searching).

* **Indexing cost per write**: a memory of N files (N = ``--files``) written through
  ``StoreBackend``, each about 40 lines; then ``--reps`` x 20 writes of new files, timed
  on a store with ``index=`` and on the same kind of store without it. Reported: the
  median write with and without indexing, and the difference (what indexing costs a
  write).
* **Search latency**: memories of about C passages (C = ``--chunks``: files of 10
  passages each), then ``--reps`` searches (``limit=5``, a query that names one file's
  topic) through ``StoreBackend.recall``; the median, and whether the named file came
  first (every answer is checked).

No targets: the numbers are for ``bench/README.md`` ("Recall by meaning").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import DEFAULT_PG_URL, open_engine

from deepmemory.backends import StoreBackend
from deepmemory.backends._chunks import chunk_text
from deepmemory.stores import PostgresStore, SQLiteStore

NS = ("bench", "recall")
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


class Lookup(Embeddings):
    """Vectors computed in advance (``prepare``); embedding is a dict lookup."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.table: dict[str, list[float]] = {}

    def vector(self, text: str) -> list[float]:
        rng = random.Random(zlib.crc32(text.encode()))
        return [rng.uniform(-1, 1) for _ in range(self.dims)]

    def prepare(self, texts: list[str]) -> None:
        for text in texts:
            if text not in self.table:
                self.table[text] = self.vector(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table.get(t) or self.vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table.get(text) or self.vector(text)


def file_text(n: int, passages: int = 10) -> str:
    """A file of ``passages`` paragraphs of 4 lines, about topic ``n``."""
    rng = random.Random(n)
    paragraphs = []
    for p in range(passages):  # a heading starts each passage
        lines = [f"topic-{n}-{p}: " + " ".join(rng.choices(WORDS, k=8)) for _ in range(4)]
        paragraphs.append(f"## part {p} of file {n}\n" + "\n".join(lines))
    return "\n\n".join(paragraphs) + "\n"


def prepared(lookup: Lookup, texts: list[str]) -> None:
    lookup.prepare([c.text for t in texts for c in chunk_text(t)])


def timed(calls: list[Callable[[], Any]]) -> float:
    times = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def open_store(engine: Any, index: dict[str, Any] | None) -> Any:
    store = engine.open_store()
    if index is None:
        return store
    if isinstance(store, SQLiteStore):
        path = store.path  # the same file, opened with an index
        store.close()
        return SQLiteStore(path, index=index)
    assert isinstance(store, PostgresStore)
    url = store.connection_string
    store.close()
    return PostgresStore(connection_string=url, index=index)


def _write_stores(engine: Any, index: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(backend, store) with the index, and (backend, store) without it."""
    store, plain = open_store(engine, index), engine.open_store()
    return (
        StoreBackend(store=store, namespace=NS),
        store,
        StoreBackend(store=plain, namespace=("bench", "plain")),
        plain,
    )


def _writes(backend: Any, prefix: str, texts: list[str]) -> list[Callable[[], Any]]:
    return [lambda i=i, t=t: backend.write(f"{prefix}{i}.md", t) for i, t in enumerate(texts)]


def run(name: str, args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    lookup = Lookup(args.dims)
    index = {"dims": args.dims, "embed": lookup}
    out: dict[str, Any] = {"writes": [], "searches": []}
    with open_engine(name, args.pg_url) as engine:
        # -- indexing cost per write --
        loaded = 0
        for files in args.files:
            texts = [file_text(n, 4) for n in range(loaded, files)]
            prepared(lookup, texts)
            backend, store, plain_backend, plain = _write_stores(engine, index)
            t0 = time.perf_counter()
            for n, text in zip(range(loaded, files), texts, strict=True):
                backend.write(f"/w/f{n:06d}.md", text)
            log(f"[{name}] {files:,} files written (indexed) in {time.perf_counter() - t0:.1f} s")
            loaded = files
            new = [file_text(10**7 + files * 100 + i, 4) for i in range(20 * args.reps)]
            prepared(lookup, new)
            half = len(new) // 2
            with_index = timed(_writes(backend, f"/new/{files}-", new[:half]))
            without = timed(_writes(plain_backend, f"/new/{files}-", new[half:]))
            plain.close()
            store.close()
            row = {"files": files, "indexed_ms": with_index, "plain_ms": without}
            out["writes"].append(row)
            log(
                f"[{name}] write at {files:,} files: {with_index:.2f} ms indexed, "
                f"{without:.2f} ms without; indexing costs {with_index - without:.2f} ms"
            )
        # -- search latency --
        made = 0
        store = open_store(engine, index)
        backend = StoreBackend(store=store, namespace=("bench", "search"))
        for chunks in args.chunks:
            files = chunks // 10
            texts = {n: file_text(n) for n in range(made, files)}
            prepared(lookup, list(texts.values()))
            t0 = time.perf_counter()
            for n, text in texts.items():
                backend.write(f"/s/d{n % 100:02d}/f{n:06d}.md", text)
            made = files
            if engine.vacuum is not None:
                engine.vacuum()
            log(f"[{name}] {chunks:,} passages loaded in {time.perf_counter() - t0:.1f} s")
            rng = random.Random(chunks)
            targets = [rng.randrange(files) for _ in range(args.reps)]
            queries = []
            for n in targets:
                passage = chunk_text(file_text(n))[3].text
                queries.append((n, passage))
            right = 0

            def search(n: int, passage: str) -> None:
                nonlocal right
                result = backend.recall(passage, "/", 5)
                right += bool(result.passages) and result.passages[0].path.endswith(f"f{n:06d}.md")

            backend.recall(queries[0][1], "/", 5)  # warm-up
            ms = timed([lambda n=n, p=p: search(n, p) for n, p in queries])
            out["searches"].append({"chunks": chunks, "median_ms": ms, "right": right})
            log(
                f"[{name}] search over {chunks:,} passages: {ms:.2f} ms, right {right}/{len(queries)}"
            )
        store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--files", default="1000,10000")
    parser.add_argument("--chunks", default="1000,10000,100000")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--pg-url", default=os.environ.get("DEEPMEMORY_BENCH_POSTGRES_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    args.files = [int(x) for x in args.files.split(",")]
    args.chunks = [int(x) for x in args.chunks.split(",")]
    results = {name: run(name, args, print) for name in args.engines.split(",")}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    wrong = [
        f"{engine} {row['chunks']}"
        for engine, got in results.items()
        for row in got["searches"]
        if row["right"] < args.reps
    ]
    if wrong:
        print("Searches that did not find the named file first: " + ", ".join(wrong))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
