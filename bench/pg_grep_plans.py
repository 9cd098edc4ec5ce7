"""Show how PostgresStore's grep latency depends on the plan of a prepared statement.

Usage::

    python bench/pg_grep_plans.py [--files 10000] [--calls 14] [--pg-url URL]

Loads the benchmark corpus into ``deepmemory.stores.PostgresStore`` in a temporary
database, then runs the store's own grep statement (``_sql.grep_files``) repeatedly on
three connections and prints the milliseconds of every call:

* psycopg's default: a statement is prepared server-side from its 5th execution
  (``prepare_threshold=5``); PostgreSQL then uses custom plans for 5 executions and
  may switch to a *generic* plan, in which ``LIKE $n`` (pattern unknown at plan time)
  is not answered through the ``pg_trgm`` index;
* ``prepare_threshold=None``: never prepared, every call planned with its pattern;
* ``plan_cache_mode = force_custom_plan``: prepared, but always planned with its pattern.

Also prints ``EXPLAIN ANALYZE`` of the generic plan. Read-only towards the stores'
code: it only calls their SQL builder.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from typing import Any

import psycopg
from bench_stores import DEFAULT_PG_URL, LITERAL, NAMESPACE, load
from psycopg import sql
from psycopg.conninfo import make_conninfo

from deepmemory.stores import PostgresStore, _sql


def _positional(query: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``%(name)s`` placeholders as ``$1, $2, ...`` for PREPARE, with the values in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = re.sub(r"%\((\w+)\)s", number, query).replace("%%", "%")
    return text, [params[n] for n in names]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--calls", type=int, default=14)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = p.parse_args()
    dbname = f"deepmemory_plans_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = make_conninfo(args.pg_url, dbname=dbname)
    try:
        with PostgresStore(connection_string=url) as store:
            load(store, 0, args.files)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        query, params = _sql.grep_files("postgres", NAMESPACE, "/", LITERAL, None, "").query
        print(f"{args.files:,} files; grep {LITERAL!r}: milliseconds of successive calls")
        variants: list[tuple[str, dict[str, Any], str | None]] = [
            ("psycopg default (prepare_threshold=5)", {}, None),
            ("prepare_threshold=None", {"prepare_threshold": None}, None),
            ("plan_cache_mode=force_custom_plan", {}, "SET plan_cache_mode = force_custom_plan"),
        ]
        for label, kwargs, setup in variants:
            with psycopg.connect(url, autocommit=True, **kwargs) as conn:
                if setup:
                    conn.execute(setup)
                times = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    conn.execute(query, params).fetchall()
                    times.append(f"{(time.perf_counter() - t0) * 1000:.1f}")
                print(f"  {label:40} {' '.join(times)}")
        text, values = _positional(query, params)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET plan_cache_mode = force_generic_plan")
            conn.execute("PREPARE grep_generic AS " + text)  # type: ignore[arg-type]
            literals = ", ".join(sql.quote(v) for v in values)
            print("\nEXPLAIN ANALYZE of the generic plan:")
            for (line,) in conn.execute(f"EXPLAIN (ANALYZE) EXECUTE grep_generic({literals})"):  # type: ignore[arg-type]
                print("  " + line)
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
