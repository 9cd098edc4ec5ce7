"""Mutation check: put each critical bug into a copy of the code and see which test catches it.

Every entry of ``MUTANTS`` names a source file, a text in it, what replaces that text
(the bug), and the tests expected to catch it. The script copies ``src`` and ``tests``
to a scratch folder, applies one mutation at a time, runs those tests there and
reports the first failing test, or ``SURVIVED``. Every mutation must be caught:
the exit status is 1 if one survives (or no longer applies because the code moved).

    python bench/mutants.py                  # every mutation
    python bench/mutants.py -k map           # the ones whose name contains "map"

PostgreSQL mutations need ``DEEPMEMORY_TEST_POSTGRES_URL`` (CI sets it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: ``old`` replaced by ``new`` in ``path``, caught by ``tests``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS: list[Mutant] = [
    Mutant(
        "map: deletions are not counted (SQLite)",
        "src/deepmemory/stores/migrations.py",
        "ON CONFLICT (namespace) DO UPDATE SET deletes = deletes + 1; END",
        "ON CONFLICT (namespace) DO UPDATE SET deletes = deletes; END",
        ("tests/stores/test_memory_map_cost.py::test_the_map_is_reused_until_memory_changes",),
    ),
    Mutant(
        "map: deletions are not counted (PostgreSQL)",
        "src/deepmemory/stores/migrations.py",
        '"SELECT namespace, txid_current(), count(*) FROM gone GROUP BY namespace "',
        '"SELECT namespace, txid_current(), 0 FROM gone GROUP BY namespace "',
        ("tests/stores/test_memory_map_cost.py::test_the_map_is_reused_until_memory_changes",),
    ),
    Mutant(
        "map: the change token looks at the oldest versions",
        "src/deepmemory/stores/_recent.py",
        "WHERE namespace = :ns ORDER BY version DESC LIMIT :limit) AS v",
        "WHERE namespace = :ns ORDER BY version ASC LIMIT :limit) AS v",
        ("tests/stores/test_memory_map_cost.py",),
    ),
    Mutant(
        "map: the change token of one tenant moves with another's writes",
        "src/deepmemory/stores/_recent.py",
        "WHERE namespace = :ns ORDER BY version DESC LIMIT :limit) AS v",
        "ORDER BY version DESC LIMIT :limit) AS v",
        ("tests/stores/test_memory_map_cost.py",),
    ),
    Mutant(
        "map: rebuilt on every model call",
        "src/deepmemory/middleware/memory_map.py",
        "    cached = cache.get(key)\n    if cached is not None:\n        return cached\n"
        "    with uncounted_reads():  # the map",
        "    cached = None\n    with uncounted_reads():  # the map",
        ("tests/stores/test_memory_map_cost.py",),
    ),
    Mutant(
        "glob: a directory's glob reads every name of the memory",
        "src/deepmemory/stores/_search.py",
        'whole_memory = dir_key == "/" and keys["first"] == keys["lo"]',
        'whole_memory = keys["first"] == keys["lo"]',
        ("tests/stores/test_glob_plans.py",),
    ),
    Mutant(
        "glob: a negated class matches '/' (a name pattern reaches into directories)",
        "src/deepmemory/backends/_match.py",
        'return ("[^/" if negate else "[")',
        'return ("[^" if negate else "[")',
        ("tests/conformance/test_glob_oracle.py::test_glob_answers_equal_the_oracle",),
    ),
    Mutant(
        "glob: patterns are not normalised to NFC (an NFD pattern finds nothing)",
        "src/deepmemory/backends/_match.py",
        '    pattern = unicodedata.normalize("NFC", pattern)\n    if len(pattern) > MAX_PATTERN_CHARS:',
        "    if len(pattern) > MAX_PATTERN_CHARS:",
        ("tests/conformance/test_glob_oracle.py::test_glob_answers_equal_the_oracle",),
    ),
    Mutant(
        "glob: a '-' right after a range starts another range",
        "src/deepmemory/backends/_match.py",
        '            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")\n            k += 3',
        '            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")\n            k += 2',
        ("tests/conformance/test_glob_oracle.py::test_glob_answers_equal_the_oracle",),
    ),
    Mutant(
        "glob: the name-length index seeks the wrong length",
        "src/deepmemory/stores/_search.py",
        'params["name_length"] = length',
        'params["name_length"] = length + 1',
        ("tests/stores/test_glob_plans.py",),
    ),
    Mutant(
        "compare-and-swap: a write lands whatever version the file has now",
        "src/deepmemory/stores/_sql.py",
        'f"WHERE namespace = :ns AND key = :key AND version = :expected RETURNING {WRITTEN}"',
        'f"WHERE namespace = :ns AND key = :key AND :expected = :expected RETURNING {WRITTEN}"',
        ("tests/stores/test_concurrency.py::test_processes_appending_to_one_file_lose_nothing",),
    ),
    Mutant(
        "edit groups: the shared write is blind (no compare-and-swap)",
        "src/deepmemory/stores/_edits.py",
        "expected_version=file.version",
        "expected_version=None",
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "edit groups: an edit applies where its string occurs more than once",
        "src/deepmemory/stores/_edits.py",
        "once = text.count(old) == 1",
        "once = text.count(old) >= 1",
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "postgres: pools of event loops that ended stay open (connections pile up)",
        "src/deepmemory/stores/postgres.py",
        "            if old.is_closed() and (stale := self._apools.pop(old, None)) is not None:",
        "            if False and (stale := self._apools.pop(old, None)) is not None:",
        (
            "tests/stores/test_coalescing.py::test_event_loops_that_end_leave_no_pools_behind",
            "tests/stores/test_coalescing.py::"
            "test_event_loops_closed_by_hand_leave_no_connections_behind",
        ),
    ),
    Mutant(
        "coalescing: identical reads share one result's lines",
        "src/deepmemory/backends/_files.py",
        "return ReadResult(vpath, list(window.lines), offset, total, size)",
        "return ReadResult(vpath, window.lines, offset, total, size)",
        (
            "tests/stores/test_coalescing.py::test_identical_concurrent_reads_get_results_of_their_own",
        ),
    ),
    Mutant(
        "bulk loads: no statistics after a sync load",
        "src/deepmemory/stores/postgres.py",
        '                conn.execute("ANALYZE deepmemory_items")',
        "                pass",
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "bulk loads: no statistics after an async load",
        "src/deepmemory/stores/postgres.py",
        '                await conn.execute("ANALYZE deepmemory_items")',
        "                pass",
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "coalescing: a writer's read is answered with the others, in queue order",
        "src/deepmemory/stores/_coalesce.py",
        "if future.done() or step.first != first:",
        "if future.done():",
        ("tests/stores/test_coalescing.py::test_a_read_its_caller_writes_after_is_answered_first",),
    ),
    Mutant(
        "coalescing: write chunks take connections other runners hold",
        "src/deepmemory/stores/_coalesce.py",
        "and len(chunks) < most",
        "and len(chunks) < self._max_runners",
        (
            "tests/stores/test_coalescing.py::test_thousands_of_concurrent_store_calls_share_a_small_pool",
        ),
    ),
    Mutant(
        "filters: a dotted key is only a literal key",
        "src/deepmemory/stores/_sql.py",
        'return [key.split("."), [key]]',
        "return [[key]]",
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "filters: any key is accepted",
        "src/deepmemory/stores/_sql.py",
        "if not isinstance(key, str) or not _FILTER_KEY.fullmatch(key):",
        "if not isinstance(key, str):",
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "coalescing: a deadlock's victim fails instead of running again",
        "src/deepmemory/stores/_coalesce.py",
        "            if attempt == RETRIES:\n                _fail(job, exc)",
        "            if True:\n                _fail(job, exc)",
        (
            "tests/stores/test_coalescing.py::test_a_statement_chosen_as_a_deadlock_victim_runs_again",
        ),
    ),
    Mutant(
        "ttl: expired items are still read",
        "src/deepmemory/stores/_sql.py",
        '_ALIVE = "(expires_at IS NULL OR expires_at > :epoch)"',
        '_ALIVE = "(expires_at IS NULL OR expires_at > :epoch OR 1 = 1)"',
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "ttl: reads do not move an item's expiry on (SQLite)",
        "src/deepmemory/stores/_sql.py",
        '_REFRESH_ITEM = (\n    "UPDATE deepmemory_items SET expires_at = :epoch + ttl_minutes * 60 "',
        '_REFRESH_ITEM = (\n    "UPDATE deepmemory_items SET expires_at = expires_at "',
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "ttl: reads do not move an item's expiry on (PostgreSQL)",
        "src/deepmemory/stores/_sql.py",
        '        update = (\n            "UPDATE deepmemory_items SET expires_at = :epoch + ttl_minutes * 60 "',
        '        update = (\n            "UPDATE deepmemory_items SET expires_at = expires_at "',
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "ttl: the sweep deletes items still alive (SQLite)",
        "src/deepmemory/stores/_ttl.py",
        'AND expires_at <= :epoch "\n        "RETURNING key"',
        'AND expires_at <= :epoch + 1e12 "\n        "RETURNING key"',
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "ttl: the sweep deletes items still alive (PostgreSQL)",
        "src/deepmemory/stores/_ttl.py",
        'AND expires_at <= :epoch "\n            "FOR UPDATE SKIP LOCKED',
        'AND expires_at <= :epoch + 1e12 "\n            "FOR UPDATE SKIP LOCKED',
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "coalescing: a merged read hands every row to its first caller",
        "src/deepmemory/stores/_coalesce.py",
        "by_job[row[0] - 1].append(row[1:])",
        "by_job[0].append(row[1:])",
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "coalescing: reads of different windows merge without their window",
        "src/deepmemory/stores/_lines.py",
        '_BY_WINDOW = {fresh: Merge((*m.by, "first", "last")) for fresh, m in BY_FILE.items()}',
        "_BY_WINDOW = BY_FILE",
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "coalescing: reads under an expiry never merge (each call has its own cutoff)",
        "src/deepmemory/stores/_sql.py",
        'BY_FILE = {False: Merge(("key",)), True: Merge(("key", "fresh"))}',
        'BY_FILE = {False: Merge(("key",)), True: Merge(("key",))}',
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "coalescing: merged compare-and-swap writes skip the version check",
        "src/deepmemory/stores/_sql.py",
        '"WHERE namespace = :ns AND key = _q._key AND version = CAST(_q._expected AS bigint) "',
        '"WHERE namespace = :ns AND key = _q._key "',
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "coalescing: merged writes record each revision under another file's number",
        "src/deepmemory/stores/_revisions.py",
        '"RETURNING key AS _hkey, revision AS _head"',
        '"RETURNING key AS _hkey, 1 AS _head"',
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "index: a search ranks items by vectors of an older version",
        "src/deepmemory/stores/_vectors.py",
        "ON namespace = s.sn AND key = s.sk AND version = s.sv ",
        "ON namespace = s.sn AND key = s.sk ",
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "index: deleting an item leaves its vectors (SQLite)",
        "src/deepmemory/stores/migrations.py",
        '"BEGIN DELETE FROM deepmemory_vectors "\n            "WHERE namespace = old.namespace AND key = old.key; END",',
        '"BEGIN SELECT 1; END",',
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "index: deleting an item leaves its vectors (PostgreSQL)",
        "src/deepmemory/stores/migrations.py",
        '"WHERE v.namespace = g.namespace AND v.key = g.key; RETURN NULL; END $fn$",',
        '"WHERE false; RETURN NULL; END $fn$",',
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "index: an item scores by its worst vector",
        "src/deepmemory/stores/_vectors.py",
        "AS sv, max({score}) AS score",
        "AS sv, min({score}) AS score",
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "index: one embedder call per text",
        "src/deepmemory/stores/_vectors.py",
        "vectors = self.embeddings.embed_documents(texts) if texts else []",
        "vectors = [v for t in texts for v in self.embeddings.embed_documents([t])]",
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "index: a search refreshing TTLs returns the page by last update",
        "src/deepmemory/stores/_vectors.py",
        "sql, then = _refreshing_page(dialect, sql, params, order)",
        "sql, then = _refreshing_page(dialect, sql, params)",
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "index: PostgreSQL cosine forgets the query's norm",
        "src/deepmemory/stores/_vectors.py",
        '"ELSE {dot} / (v.norm * CAST(:qnorm AS float8)) END"',
        '"ELSE {dot} / (v.norm) END"',
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "ttl: a PostgreSQL search does not move its items' expiry on",
        "src/deepmemory/stores/_sql.py",
        '"SET expires_at = :epoch + t.ttl_minutes * 60 FROM free "',
        '"SET expires_at = t.expires_at FROM free "',
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "ttl: stopping the sweeper from a coroutine blocks its event loop",
        "src/deepmemory/stores/_ttl.py",
        "        return Stopped(False, self, timeout)\n",
        "        return Stopped(self.join(timeout))\n",
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "index: an exact search drops items without vectors",
        "src/deepmemory/stores/_vectors.py",
        '        join = "LEFT JOIN"\n',
        '        join = "JOIN"\n',
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "index: unscored items come first on PostgreSQL",
        "src/deepmemory/stores/_vectors.py",
        'order = "score DESC NULLS LAST, namespace, key"',
        'order = "score DESC, namespace, key"',
        ("tests/stores/test_semantic_index.py",),
    ),
    Mutant(
        "coalescing: a batch's statements each commit on their own (no pipeline)",
        "src/deepmemory/stores/_coalesce.py",
        "        async with conn.pipeline():\n            cursors = []",
        "        async with contextlib.nullcontext():\n            cursors = []",
        ("tests/stores/test_coalescing.py::test_a_batch_is_all_or_nothing",),
    ),
    Mutant(
        "coalescing: a failed batch leaves psycopg's record of prepared statements",
        "src/deepmemory/stores/_coalesce.py",
        "        async with conn.transaction(force_rollback=True):\n            pass\n",
        "        pass\n",
        ("tests/stores/test_coalescing.py",),
    ),
    Mutant(
        "strict_loop: blocking calls inside a running loop are not refused",
        "src/deepmemory/stores/_base.py",
        "        if origin.strict_loop:\n            _refuse_inside_loop(origin)\n",
        "",
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "ttl: omit_expired is ignored (expired items always read)",
        "src/deepmemory/stores/_sql.py",
        '    return _ALIVE if omit_expired else "TRUE"',
        '    return "TRUE"',
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "ttl: expired items are hidden without omit_expired",
        "src/deepmemory/stores/_sql.py",
        '    return _ALIVE if omit_expired else "TRUE"',
        "    return _ALIVE",
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "setup(): PostgreSQL leaves its tables for the first call",
        "src/deepmemory/stores/postgres.py",
        "    def _ensure_tables(self) -> None:\n        self._ensure_schema()\n",
        "    def _ensure_tables(self) -> None:\n        pass\n",
        ("tests/stores/test_base_store.py",),
    ),
    Mutant(
        "deepagents StoreBackend: edits write without compare-and-swap",
        "src/deepmemory/integrations/deepagents/_store.py",
        'put = {"expected_version": file.version, **kwargs}',
        'put = {"expected_version": None, **kwargs}',
        (
            "tests/integrations/test_deepagents.py::"
            "test_concurrent_edits_through_compare_and_swap_lose_nothing",
        ),
    ),
    Mutant(
        "isolation: a file's lookup ignores the namespace",
        "src/deepmemory/stores/_sql.py",
        'sql = "SELECT value, version FROM deepmemory_items WHERE namespace = :ns AND key = :key"',
        'sql = "SELECT value, version FROM deepmemory_items WHERE key = :key"',
        ("tests/security/test_isolation.py::test_user_a_cannot_see_change_or_delete_user_b_files",),
    ),
    Mutant(
        "isolation: a read of lines ignores the namespace",
        "src/deepmemory/stores/_lines.py",
        'where = f"namespace = :ns AND key = :key{',
        'where = f"key = :key{',
        ("tests/security/test_isolation.py::test_user_a_cannot_see_change_or_delete_user_b_files",),
    ),
    Mutant(
        "isolation: a directory's files are listed from every namespace",
        "src/deepmemory/stores/_sql.py",
        'f"WHERE namespace = :ns AND parent = :dir{used} "',
        'f"WHERE parent = :dir{used} "',
        ("tests/security/test_isolation.py::test_user_a_cannot_see_change_or_delete_user_b_files",),
    ),
    Mutant(
        "isolation: a directory's subdirectories are listed from every namespace",
        "src/deepmemory/stores/_sql.py",
        '"WHERE namespace = :ns AND key {op} {bound} AND key < :hi "',
        '"WHERE key {op} {bound} AND key < :hi "',
        ("tests/security/test_isolation.py::test_user_a_cannot_see_change_or_delete_user_b_files",),
    ),
    Mutant(
        "isolation: a glob matches every namespace",
        "src/deepmemory/stores/_search.py",
        '    where = f"namespace = :ns AND {_RANGE}"\n    hint = ""',
        '    where = f"{_RANGE}"\n    hint = ""',
        ("tests/security/test_isolation.py::test_user_a_cannot_see_change_or_delete_user_b_files",),
    ),
    Mutant(
        "isolation: a tree-wide glob by name matches every namespace",
        "src/deepmemory/stores/_search.py",
        'where = f"namespace = :ns AND {condition} AND {_RANGE}"',
        'where = f"{condition} AND {_RANGE}"',
        ("tests/security/test_isolation.py::test_user_a_cannot_see_change_or_delete_user_b_files",),
    ),
    Mutant(
        "isolation: grep searches every namespace",
        "src/deepmemory/stores/_search.py",
        'where = [f"namespace = :ns AND {_RANGE}{_fresh(dialect, fresh, params, table)}"]',
        'where = [f"{_RANGE}{_fresh(dialect, fresh, params, table)}"]',
        ("tests/security/test_isolation.py::test_user_a_cannot_see_change_or_delete_user_b_files",),
    ),
    Mutant(
        "durability: SQLite does not sync at commit (synchronous=OFF)",
        "src/deepmemory/stores/sqlite.py",
        'conn.execute(f"PRAGMA synchronous={self.synchronous}")',
        'conn.execute("PRAGMA synchronous=OFF")',
        ("tests/security/test_durability.py::test_sqlite_connections_sync_as_documented",),
    ),
    Mutant(
        "durability: SQLite acknowledges a write before it commits",
        "src/deepmemory/stores/sqlite.py",
        '            conn.execute("COMMIT")  # may fail too',
        "            pass  # may fail too",
        (
            "tests/security/test_durability.py::"
            "test_every_acknowledged_write_survives_sigkill_at_random_moments",
        ),
    ),
    Mutant(
        "durability: a failed SQLite COMMIT leaves its transaction open",
        "src/deepmemory/stores/sqlite.py",
        "            if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full).\n"
        '                conn.execute("ROLLBACK")',
        "            if False:\n                pass",
        (
            "tests/security/test_durability.py::"
            "test_a_failed_commit_leaves_nothing_behind_and_the_connection_usable",
        ),
    ),
    Mutant(
        "crash: closing a SQLite store pulls a connection from a statement under way",
        "src/deepmemory/stores/sqlite.py",
        "with held.lock:  # close() waits for the statements under way",
        "if True:",
        (
            "tests/stores/test_concurrency.py::"
            "test_closing_waits_for_a_statement_under_way_in_another_thread",
        ),
    ),
    Mutant(
        "crash: closing a SQLite store pulls its checkpointer from a checkpoint being written",
        "src/deepmemory/stores/sqlite.py",
        "if saver is not None and saver.lock.acquire(timeout=self.timeout):\n"
        "            try:\n"
        "                saver.conn.close()\n"
        "            finally:\n"
        "                saver.lock.release()",
        "if saver is not None:\n            saver.conn.close()",
        (
            "tests/stores/test_concurrency.py::"
            "test_closing_waits_for_a_checkpoint_being_written_in_another_thread",
        ),
    ),
    Mutant(
        "grep: SQLite reads the full text of every matching file",
        "src/deepmemory/stores/_search.py",
        '            "ORDER BY key LIMIT :files"',
        '            "ORDER BY key"',
        (
            "tests/stores/test_file_queries.py::test_grep_reads_at_most_one_match_more_than_it_answers",
        ),
    ),
    Mutant(
        "grep: PostgreSQL sends every matching line",
        "src/deepmemory/stores/_search.py",
        "ORDER BY key, n LIMIT :lines",
        "ORDER BY key, n",
        (
            "tests/stores/test_file_queries.py::test_grep_reads_at_most_one_match_more_than_it_answers",
        ),
    ),
    Mutant(
        "export: the whole archive is built in memory before it is written",
        "src/deepmemory/cli/memory.py",
        "            for entry in _archive.export_files(store, namespaces):",
        "            for entry in list(_archive.export_files(store, namespaces)):",
        ("tests/cli/test_archive.py::test_export_holds_one_file_at_a_time_not_the_archive",),
    ),
    Mutant(
        "import: an archive writes into any namespace",
        "src/deepmemory/cli/_archive.py",
        "            if not any_namespace and (len(ns) != 2 or ns[0] != MEMORY_PREFIX):",
        "            if False:",
        ("tests/cli/test_archive.py::test_import_writes_only_users_memory_unless_told_otherwise",),
    ),
    Mutant(
        "tools: the injected runtime is unparameterised (serializer warnings on each call)",
        "src/deepmemory/middleware/filesystem.py",
        "AnyRuntime = ToolRuntime[Any, Any]",
        "AnyRuntime = ToolRuntime",
        ("tests/agent/test_agent.py::test_a_run_with_a_context_prints_no_serializer_warnings",),
    ),
    Mutant(
        "cli: a command that only reads creates a missing database",
        "src/deepmemory/cli/_store.py",
        "    if not writes:\n        with tempfile.TemporaryDirectory",
        "    if False:\n        with tempfile.TemporaryDirectory",
        ("tests/cli/test_first_hour.py",),
    ),
    Mutant(
        "cli: a failing command keeps the database it created",
        "src/deepmemory/cli/_store.py",
        "                leftover.unlink(missing_ok=True)",
        "                pass",
        ("tests/cli/test_first_hour.py",),
    ),
    Mutant(
        "cli: --db takes any URL as a SQLite file name",
        "src/deepmemory/cli/_store.py",
        '    if "://" in db and not is_postgres(db):',
        "    if False:",
        ("tests/cli/test_first_hour.py",),
    ),
    Mutant(
        "postgres: an async pool is left to asyncio.run's cancellation (hangs mid-growth)",
        "src/deepmemory/stores/postgres.py",
        "create_task(_close_when_loop_ends(pool))",
        "create_task(asyncio.sleep(0))",
        ("tests/stores/test_coalescing.py::test_asyncio_run_ends_while_the_pool_is_still_growing",),
    ),
    Mutant(
        "postgres: an ending loop's cancelled connects are logged as errors",
        "src/deepmemory/stores/postgres.py",
        'logging.getLogger("psycopg.pool").addFilter(_QuietShutdownConnects())',
        "pass",
        ("tests/stores/test_coalescing.py::test_asyncio_run_ends_while_the_pool_is_still_growing",),
    ),
    Mutant(
        "postgres: a pool whose opening is cancelled keeps its workers (asyncio.run hangs)",
        "src/deepmemory/stores/postgres.py",
        "stop its workers\n            await _close_pool(pool)\n            raise",
        "stop its workers\n            raise",
        ("tests/stores/test_coalescing.py::test_asyncio_run_ends_while_the_pool_is_still_growing",),
    ),
    Mutant(
        "postgres: a pool its guard closed is handed out again",
        "src/deepmemory/stores/postgres.py",
        " is None or opened.closed)):",
        " is None)):",
        (
            "tests/stores/test_coalescing.py::test_a_store_works_again_after_every_other_task_of_its_loop_was_cancelled",
        ),
    ),
    Mutant(
        "postgres: the checkpointer keeps a pool its guard closed",
        "src/deepmemory/stores/postgres.py",
        "if saver is None or saver.conn.closed:",
        "if saver is None:",
        (
            "tests/stores/test_coalescing.py::test_a_store_works_again_after_every_other_task_of_its_loop_was_cancelled",
        ),
    ),
    Mutant(
        "postgres: aclose() leaves the pool's guard pending (a closed store stays alive)",
        "src/deepmemory/stores/postgres.py",
        "            guard.cancel()\n            await asyncio.wait([guard])",
        "            pass",
        ("tests/stores/test_coalescing.py::test_aclose_leaves_no_task_of_the_store_on_its_loop",),
    ),
    Mutant(
        "postgres: close() from another thread leaves a running loop's pool open",
        "src/deepmemory/stores/postgres.py",
        "loop.call_soon_threadsafe(guard.cancel)",
        "pass",
        (
            "tests/stores/test_coalescing.py::test_close_from_another_thread_closes_the_pool_of_a_running_loop",
        ),
    ),
    Mutant(
        "postgres: a pool whose close() its cancelled workers cut short keeps its connections",
        "src/deepmemory/stores/postgres.py",
        "    finally:\n        _finish(idle)",
        "    finally:\n        pass",
        (
            "tests/stores/test_coalescing.py::test_connections_do_not_pile_up_over_runs_that_grow_the_pool",
        ),
    ),
    Mutant(
        "postgres: a pool that finished opening after close() is handed out",
        "src/deepmemory/stores/postgres.py",
        "        if self._closed:  # close() ran while this pool opened",
        "        if False:  # close() ran while this pool opened",
        (
            "tests/stores/test_coalescing.py::test_aclose_while_the_pool_opens_hands_it_to_nobody_and_leaves_nothing",
        ),
    ),
    Mutant(
        "postgres: close() runs another thread's idle event loop",
        "src/deepmemory/stores/postgres.py",
        "if thread == threading.get_ident() and not loop.is_running():",
        "if not loop.is_running():",
        ("tests/stores/test_coalescing.py::test_close_never_runs_an_event_loop_of_another_thread",),
    ),
    Mutant(
        "cli: text starting with '-' is parsed as options (click's default)",
        "src/deepmemory/cli/_typed.py",
        "        return super().parse_args(ctx, typed)",
        "        return super().parse_args(ctx, args)",
        ("tests/cli/test_first_hour.py",),
    ),
    Mutant(
        "cli: a token like -g*.md is taken as a PATH (grep looks in a folder of that name)",
        "src/deepmemory/cli/_typed.py",
        'if param.name in PATH_ARGUMENTS and text.startswith("-") and text != "-":',
        "if False:",
        ("tests/cli/test_first_hour.py::test_a_value_stuck_to_an_option_is_text_and_never_a_path",),
    ),
    Mutant(
        "cli: a shown PostgreSQL URL keeps a password that holds '#', '?' or '/'",
        "src/deepmemory/cli/_store.py",
        '    for stop in ("/", "?"):',
        '    for stop in ("/",):',
        ("tests/cli/test_db_url.py",),
    ),
    Mutant(
        "cli: a PostgreSQL URL's schema= is ignored (tables land in public)",
        "src/deepmemory/cli/_store.py",
        '    return url, names[0] if names else "public"',
        '    return url, "public"',
        ("tests/cli/test_db_url.py",),
    ),
    Mutant(
        "paths: a path is not normalised to NFC",
        "src/deepmemory/paths.py",
        '        path = unicodedata.normalize("NFC", path)',
        "        path = path",
        ("tests/test_paths.py::test_near_valid_paths_normalise_exactly_as_documented",),
    ),
    Mutant(
        "paths: a segment that reads as '..' once normalised (fullwidth dots) passes",
        "src/deepmemory/paths.py",
        'if folded in (".", "..") or any(c in folded for c in _FORBIDDEN_FOLDED):',
        "if any(c in folded for c in _FORBIDDEN_FOLDED):",
        ("tests/test_paths.py::test_near_valid_paths_normalise_exactly_as_documented",),
    ),
    Mutant(
        "paths reach a backend's storage unvalidated (writes; every backend)",
        "src/deepmemory/backends/_checks.py",
        "        vpath = paths.validate_file(file_path)\n    except errors.InvalidPathError as exc:\n"
        "        return str(file_path), str(exc)\n    if not isinstance(content, str):",
        "        vpath = str(file_path)\n    except errors.InvalidPathError as exc:\n"
        "        return str(file_path), str(exc)\n    if not isinstance(content, str):",
        (
            "tests/integrations/test_deepagents_routes.py::"
            "test_paths_our_rules_refuse_never_reach_the_wrapped_backend",
        ),
    ),
    Mutant(
        "deepagents route: grep keeps matches outside the path asked for",
        "src/deepmemory/integrations/deepagents/_route.py",
        "continue  # the wrapped backend looked wider than asked",
        "pass",
        ("tests/integrations/test_deepagents_routes.py::TestConformance",),
    ),
    Mutant(
        "deepagents route: a missing file gets the wrapped backend's message",
        "src/deepmemory/integrations/deepagents/_route.py",
        "if self._missing(message, key):",
        "if False:",
        ("tests/integrations/test_deepagents_routes.py::TestConformance",),
    ),
    Mutant(
        "move: the destination is not checked (a directory moves into a taken one)",
        "src/deepmemory/stores/_moves.py",
        'f"AND NOT EXISTS ({taken})"',
        '""',
        ("tests/stores/test_moves.py::test_a_move_onto_a_taken_path_moves_nothing",),
    ),
    Mutant(
        "move: vectors keep the old version (PostgreSQL)",
        "src/deepmemory/stores/_moves.py",
        '"WHEN vec.version = o.version THEN m.version ELSE vec.version END "',
        '"WHEN false THEN m.version ELSE vec.version END "',
        (
            "tests/stores/test_moves.py::test_search_by_meaning_finds_a_moved_item_under_its_new_key",
        ),
    ),
    Mutant(
        "move: vectors keep the old version (SQLite)",
        "src/deepmemory/stores/_moves.py",
        '"THEN (SELECT i.version FROM deepmemory_items AS i WHERE i.namespace = :ns "',
        '"THEN version + 0 * (SELECT i.version FROM deepmemory_items AS i WHERE i.namespace = :ns "',
        (
            "tests/stores/test_moves.py::test_search_by_meaning_finds_a_moved_item_under_its_new_key",
        ),
    ),
    Mutant(
        "move: not recorded in history",
        "src/deepmemory/stores/_moves.py",
        'records = retention.records and key.startswith("/")',
        "records = False",
        (
            "tests/stores/test_moves.py::"
            "test_a_move_is_recorded_at_both_paths_and_the_old_content_stays_restorable",
        ),
    ),
    Mutant(
        "move: a read-only area lets moves through",
        "src/deepmemory/backends/policies.py",
        '"""Refused when either end is read-only, else passed on."""\n'
        "        locked = self._locked(old_path) or self._locked(new_path)",
        '"""Refused when either end is read-only, else passed on."""\n        locked = None',
        ("tests/conformance/test_policies.py",),
    ),
    Mutant(
        "move: CompositeBackend lets a move cross storages",
        "src/deepmemory/backends/composite.py",
        "if self.route(new) is not owner:",
        "if False:",
        ("tests/conformance/test_composite.py::test_moves_stay_within_one_storage",),
    ),
    Mutant(
        "recall: words shared by every passage outrank meaning (ties by key)",
        "src/deepmemory/stores/_passages.py",
        '"ORDER BY w DESC, s DESC, v.key, v.seq LIMIT :limit"',
        '"ORDER BY w DESC, v.key, v.seq LIMIT :limit"',
        (
            "tests/stores/test_passages.py::"
            "test_words_every_passage_shares_do_not_outrank_the_closest_passage",
        ),
    ),
    Mutant(
        "recall: passages of an older version of a file are searched",
        "src/deepmemory/stores/_passages.py",
        "f\"AND f.version = i.version{_fresh(dialect, fresh, params, 'i')}\"",
        "f\"{_fresh(dialect, fresh, params, 'i')}\"",
        (
            "tests/stores/test_passages.py::"
            "test_unindexed_files_are_left_out_and_reported_until_indexed",
        ),
    ),
    Mutant(
        "recall: another namespace's passages are searched",
        "src/deepmemory/stores/_passages.py",
        "f\"WHERE v.namespace = :ns AND {_range(dir_key, params, dialect, 'v')} \"",
        "f\"WHERE {_range(dir_key, params, dialect, 'v')} \"",
        ("tests/agent/test_recall.py::test_one_user_never_recalls_another_users_passages",),
    ),
    Mutant(
        "claude memory tool: approve_writes does not know it",
        "src/deepmemory/integrations/anthropic/_middleware.py",
        "register_write_tool(WriteTool(TOOL_NAME, targets, proposed_change))",
        "pass",
        (
            "tests/integrations/test_anthropic_memory.py::"
            "test_approve_writes_pauses_a_memory_write_on_a_protected_path",
        ),
    ),
    Mutant(
        "mcp: any bearer token is accepted",
        "src/deepmemory/integrations/mcp.py",
        "        if owner is None:\n            return None\n",
        "        if owner is None:\n            owner = next(iter(self._tokens))[1]\n",
        (
            "tests/cli/test_mcp.py::"
            "test_over_http_each_token_is_one_user_and_requests_without_the_right_token_get_401",
        ),
    ),
    Mutant(
        "postgres: one delete-count row per namespace again (deleting writers deadlock)",
        "src/deepmemory/stores/migrations.py",
        '"SELECT namespace, txid_current(), count(*) FROM gone GROUP BY namespace "',
        '"SELECT namespace, 0, count(*) FROM gone GROUP BY namespace "',
        (
            "tests/stores/test_lock_cycles.py::"
            "test_concurrent_calls_with_ttl_refresh_deletes_and_sweeps_never_deadlock",
        ),
    ),
    Mutant(
        "postgres: TTL-refreshing reads wait for rows being changed",
        "src/deepmemory/stores/_sql.py",
        '"FOR UPDATE OF t SKIP LOCKED), touched AS (UPDATE deepmemory_items AS t "',
        '"FOR UPDATE OF t), touched AS (UPDATE deepmemory_items AS t "',
        (
            "tests/stores/test_lock_cycles.py::"
            "test_concurrent_calls_with_ttl_refresh_deletes_and_sweeps_never_deadlock",
        ),
    ),
    Mutant(
        "create_deep_agent: persistent memory unbounded by default",
        "src/deepmemory/agent.py",
        "    if memory_limits and backend is not None:",
        "    if False:",
        ("tests/agent/test_default_limits.py",),
    ),
    Mutant(
        "expiry: an expired directory blocks writing a file of its name",
        "src/deepmemory/stores/_sql.py",
        '        "EXISTS (SELECT 1 FROM deepmemory_items "\n'
        '        f"WHERE namespace = :ns AND key > :lo AND key < :hi{_fresh(dialect, fresh, params)})"',
        '        "EXISTS (SELECT 1 FROM deepmemory_items "\n'
        '        f"WHERE namespace = :ns AND key > :lo AND key < :hi)"',
        (
            "tests/stores/test_pruning.py::"
            "test_an_expired_directory_neither_blocks_a_file_of_its_name_nor_lists",
        ),
    ),
    Mutant(
        "expiry: an expired directory is still a directory to read_file",
        "src/deepmemory/stores/_sql.py",
        '"SELECT EXISTS (SELECT 1 FROM deepmemory_items "\n'
        '        f"WHERE namespace = :ns AND key > :lo AND key < :hi{_fresh(dialect, fresh, params)})"',
        '"SELECT EXISTS (SELECT 1 FROM deepmemory_items "\n'
        '        f"WHERE namespace = :ns AND key > :lo AND key < :hi)"',
        (
            "tests/stores/test_pruning.py::"
            "test_an_expired_directory_neither_blocks_a_file_of_its_name_nor_lists",
        ),
    ),
    Mutant(
        "first hour: memory commands import the agent stack",
        "src/deepmemory/cli/memory.py",
        "import typer\n",
        "import typer\nimport deepmemory.agent  # noqa: F401\n",
        (
            "tests/cli/test_first_hour.py::"
            "test_commands_that_run_no_agent_do_not_import_the_agent_stack",
        ),
    ),
    Mutant(
        "chat: a reply interrupted with Ctrl-C is not kept in the thread",
        "src/deepmemory/cli/chat.py",
        "        if result.unfinished.strip():",
        "        if False:",
        (
            "tests/cli/test_chat_turns.py::"
            "test_a_reply_interrupted_with_ctrl_c_is_kept_in_the_thread_marked_and_seen_next_turn",
        ),
    ),
    Mutant(
        "chat: no sign of waiting before the model's first output",
        "src/deepmemory/cli/chat.py",
        "    printer.waiting()\n    async for mode",
        "    async for mode",
        (
            "tests/cli/test_chat_turns.py::test_chat_says_it_waits_for_the_model_until_its_first_output",
        ),
    ),
    Mutant(
        "postgres: a schema made by an administrator is created again",
        "src/deepmemory/stores/migrations.py",
        "            if not _schema_exists(conn, schema):\n"
        '                conn.execute(sql.SQL("CREATE SCHEMA {}")',
        "            if True:\n"
        '                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")',
        (
            "tests/stores/test_migrations.py::"
            "test_a_user_without_create_on_the_database_uses_the_schema_an_administrator_made",
        ),
    ),
    Mutant(
        "space: a limited write sums every file",
        "src/deepmemory/stores/_expiry.py",
        '    total = "SELECT COALESCE(sum(bytes), 0), count(*) FROM deepmemory_space WHERE namespace = :ns"',
        '    total = "SELECT (SELECT COALESCE(sum(size), 0) FROM deepmemory_items WHERE namespace = :ns '
        "AND key >= '/' AND key < '0'), 1\"",
        (
            "tests/stores/test_space.py::test_a_limited_write_reads_the_kept_count_and_never_sums_the_files",
        ),
    ),
    Mutant(
        "space: expired files are summed on every limited write",
        "src/deepmemory/stores/_base.py",
        "        if fresh is not None and (bound is None or stored > bound):\n"
        "            stored = self._one(",
        "        if fresh is not None:\n            stored = self._one(",
        ("tests/stores/test_space.py::test_expired_files_count_only_until_the_limit_is_near",),
    ),
    Mutant(
        "space: expired files count against the limit",
        "src/deepmemory/stores/_base.py",
        "        if fresh is not None and (bound is None or stored > bound):\n"
        "            stored = self._one(",
        "        if False:\n            stored = self._one(",
        ("tests/stores/test_space.py::test_expired_files_count_only_until_the_limit_is_near",),
    ),
    Mutant(
        "space: deleted bytes are not subtracted (SQLite)",
        "src/deepmemory/stores/migrations.py",
        '_sqlite_space_trigger("delete", "DELETE", "-old.size", "old")',
        '_sqlite_space_trigger("delete", "DELETE", "0", "old")',
        ("tests/stores/test_space.py",),
    ),
    Mutant(
        "space: replaced bytes are not subtracted (PostgreSQL)",
        "src/deepmemory/stores/migrations.py",
        '"VALUES (OLD.namespace, txid_current(), -OLD.size) "',
        '"VALUES (OLD.namespace, txid_current(), 0) "',
        ("tests/stores/test_space.py",),
    ),
    Mutant(
        "space: the per-transaction rows are never folded (PostgreSQL)",
        "src/deepmemory/stores/_base.py",
        '        if self.dialect == "postgres" and rows > SPACE_FOLD_ROWS:\n'
        "            self._one(fold_space(namespace))",
        "        if False:\n            self._one(fold_space(namespace))",
        ("tests/stores/test_space.py",),
    ),
]


def _copy(to: Path) -> None:
    for part in ("src", "tests", "pyproject.toml"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, to / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, to / part)


def _first_failure(output: str) -> str | None:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return found.group(1) if found else None


def run(mutant: Mutant) -> tuple[bool, str]:
    """Apply ``mutant`` in a scratch copy and run its tests: (caught, what caught it)."""
    with tempfile.TemporaryDirectory(prefix="deepmemory-mutant-") as scratch:
        work = Path(scratch)
        _copy(work)
        target = work / mutant.path
        text = target.read_text()
        if text.count(mutant.old) != 1:
            return False, f"does not apply: the text occurs {text.count(mutant.old)} times"
        target.write_text(text.replace(mutant.old, mutant.new))
        env = {**os.environ, "PYTHONPATH": str(work / "src"), "CI": os.environ.get("CI", "")}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            if re.search(r"\d+ skipped", done.stdout) and not re.search(r"\d+ passed", done.stdout):
                return (
                    False,
                    "NOT RUN: its tests skipped (PostgreSQL: DEEPMEMORY_TEST_POSTGRES_URL)",
                )
            return False, "SURVIVED"
        failure = _first_failure(done.stdout)
        if failure is None:
            return False, f"tests did not run (exit {done.returncode}): {done.stdout[-500:]}"
        return True, failure


def main() -> int:
    """Run the mutations chosen on the command line; 1 if any is not caught."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k.lower() in m.name.lower()]
    missed = 0
    for mutant in chosen:
        caught, what = run(mutant)
        missed += not caught
        print(f"{'caught' if caught else 'MISSED'}  {mutant.name}: {what}", flush=True)
    print(f"{len(chosen) - missed} of {len(chosen)} mutations caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
