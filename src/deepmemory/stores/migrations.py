"""Numbered, named schema migrations for ``SQLiteStore`` and ``PostgresStore``.

Each :class:`Migration` carries the statements for both engines side by side. A
migration runs once per database (per schema on PostgreSQL), in one transaction that
also records its name in ``deepmemory_migrations``; migrations never change once
released, a later one changes what an earlier one made.

Several processes may start at once: on SQLite each migration takes the write lock
first (``BEGIN IMMEDIATE``), on PostgreSQL a transaction-scoped advisory lock
(``pg_advisory_xact_lock``); either way the loser waits, then sees the migration
recorded and skips it.

What the schema holds (both engines):

* ``deepmemory_items``: one row per store item. ``value`` is the item value as JSON,
  exactly as ``put`` received it (files use the ``StoredFile`` layout). The file
  columns (``parent``, ``encoding``, ``size``, ``modified_at``, ``text_override``)
  are derived from the value on every write, so items written by plain ``put`` are
  files too. ``version`` comes from one counter per database (``deepmemory_clock``
  on SQLite, the sequence ``deepmemory_versions`` on PostgreSQL), so a version is
  never reused, not even by a file deleted and created again.
* the grep index (m002): an FTS5 ``trigram`` table over the text of UTF-8 files on
  SQLite, a ``pg_trgm`` GIN index on PostgreSQL.
* the name index (m004): a generated ``name`` column (the key's last segment) with an
  index, for globs that name files at any depth.
* revision history (m003, see ``_revisions``): ``deepmemory_revisions``, one row per
  recorded change of a file, keyed by (namespace, key, revision), holding the item
  value as of that change (``NULL`` for a delete), ``op``, ``created_at`` and the
  author (``thread_id``, ``user_id``, ``assistant_id``); ``deepmemory_revision_heads``,
  the last number given to each file. Every file existing when m003 runs gets its
  content as revision 1 (op ``write``, at its last update, author unknown), so the
  first change after the upgrade can be undone too.
* change tracking (m006, see ``_recent``): an index on ``(namespace, version)`` and
  ``deepmemory_deletions``, the number of files ever deleted from each namespace.
* the name-length index (m007): ``(namespace, length(name), name)``, for globs whose
  file name has a fixed length (``**/f1?.md`` reads only six-character names from f1).
* grep after writes (m008, PostgreSQL): the trigram index keeps a small pending list
  and the table has planner statistics from the start (see ``PostgresStore``).
* space (m014): ``deepmemory_space``, the bytes held by each namespace's files, kept
  by triggers (on PostgreSQL per writing transaction, summed when read), for size
  limits that do not sum every file on every write.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: a SQLite user never loads psycopg
    import psycopg
    from psycopg import sql


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: its name and its statements for each engine."""

    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


_SQLITE_ITEMS = """
CREATE TABLE deepmemory_items (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    parent TEXT,
    encoding TEXT NOT NULL DEFAULT 'utf-8',
    size INTEGER NOT NULL DEFAULT 0,
    modified_at TEXT,
    text_override TEXT,
    UNIQUE (namespace, key)
)"""

_SQLITE_CLOCK_TRIGGER = """
CREATE TRIGGER deepmemory_clock_{event} AFTER {event_sql} ON deepmemory_items BEGIN
    UPDATE deepmemory_clock SET version = new.version WHERE id = 1 AND version < new.version;
END"""

_POSTGRES_ITEMS = """
CREATE TABLE deepmemory_items (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL,
    parent text COLLATE "C",
    encoding text NOT NULL DEFAULT 'utf-8',
    size bigint NOT NULL DEFAULT 0,
    modified_at text,
    text_override text,
    PRIMARY KEY (namespace, key)
)"""

# The text grep searches: a file's content unless the value holds it in another form.
_SQLITE_GREP_TEXT = (
    "CASE WHEN encoding = 'utf-8' "
    "THEN COALESCE(text_override, json_extract(value, '$.content')) END"
)

# The last segment of a file's key ("/a/b.txt" -> "b.txt"), from its parent column.
NAME_SQL = (
    "CASE WHEN parent IS NULL THEN NULL WHEN parent = '/' THEN substr(key, 2) "
    "ELSE substr(key, length(parent) + 2) END"
)

_REVISIONS = """
CREATE TABLE deepmemory_revisions (
    namespace {text} NOT NULL,
    key {text} NOT NULL,
    revision {integer} NOT NULL,
    op {plain_text} NOT NULL CHECK (op IN ('write', 'edit', 'delete', 'restore')),
    value {json},
    size {integer},
    created_at {time} NOT NULL,
    thread_id {plain_text},
    user_id {plain_text},
    assistant_id {plain_text},
    PRIMARY KEY (namespace, key, revision)
)"""
_REVISION_HEADS = """
CREATE TABLE deepmemory_revision_heads (
    namespace {text} NOT NULL,
    key {text} NOT NULL,
    revision {integer} NOT NULL,
    PRIMARY KEY (namespace, key)
){suffix}"""
_TYPES = {
    "sqlite": {"text": "TEXT", "plain_text": "TEXT", "integer": "INTEGER", "json": "TEXT"},
    "postgres": {"text": 'text COLLATE "C"', "plain_text": "text", "integer": "bigint"},
}
_TYPES["sqlite"] |= {"time": "TEXT", "suffix": " WITHOUT ROWID"}
_TYPES["postgres"] |= {"json": "jsonb", "time": "timestamptz", "suffix": ""}
# The files of an older database, as revision 1 of each ('/' <= key < '0': file keys).
_BASELINE = (
    "INSERT INTO deepmemory_revisions (namespace, key, revision, op, value, size, created_at) "
    "SELECT namespace, key, 1, 'write', value, size, updated_at FROM deepmemory_items "
    "WHERE key >= '/' AND key < '0'",
    "INSERT INTO deepmemory_revision_heads (namespace, key, revision) "
    "SELECT namespace, key, 1 FROM deepmemory_items WHERE key >= '/' AND key < '0'",
)


def _revision_tables(dialect: str) -> tuple[str, ...]:
    types = _TYPES[dialect]
    return (_REVISIONS.format(**types), _REVISION_HEADS.format(**types), *_BASELINE)


# A file's key (other LangGraph items have keys that do not start with "/").
_FILE_KEY = "key >= '/' AND key < '0'"


def _sqlite_space_trigger(name: str, event: str, change: str, row: str) -> str:
    """A SQLite trigger adding ``change`` bytes to the namespace of ``row`` (old/new)."""
    when = _FILE_KEY.replace("key", f"{row}.key")
    if event.startswith("UPDATE"):
        when += (
            " AND (old.size <> new.size OR old.key <> new.key OR old.namespace <> new.namespace)"
        )
    return (
        f"CREATE TRIGGER deepmemory_space_{name} AFTER {event} ON deepmemory_items "
        f"WHEN {when} BEGIN "
        f"INSERT INTO deepmemory_space (namespace, bytes) VALUES ({row}.namespace, {change}) "
        "ON CONFLICT (namespace) DO UPDATE SET bytes = bytes + excluded.bytes; END"
    )


MIGRATIONS: list[Migration] = [
    Migration(
        "m001_items",
        sqlite=(
            _SQLITE_ITEMS,
            # Direct children of a directory: files by parent (subdirectories are
            # found by range scans on the unique (namespace, key) index).
            "CREATE INDEX deepmemory_items_parent ON deepmemory_items (namespace, parent, key)",
            "CREATE TABLE deepmemory_clock "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
            "INSERT INTO deepmemory_clock (id, version) VALUES (1, 0)",
            _SQLITE_CLOCK_TRIGGER.format(event="insert", event_sql="INSERT"),
            _SQLITE_CLOCK_TRIGGER.format(event="update", event_sql="UPDATE OF version"),
        ),
        postgres=(
            _POSTGRES_ITEMS,
            "CREATE INDEX deepmemory_items_parent ON deepmemory_items (namespace, parent, key)",
            "CREATE SEQUENCE deepmemory_versions",
        ),
    ),
    Migration(
        "m002_grep_index",
        sqlite=(
            "ALTER TABLE deepmemory_items ADD COLUMN grep_text TEXT "
            f"GENERATED ALWAYS AS ({_SQLITE_GREP_TEXT}) VIRTUAL",
            # External content: the index holds trigrams only, the text stays in `value`.
            "CREATE VIRTUAL TABLE deepmemory_items_fts USING fts5(grep_text, "
            "content='deepmemory_items', content_rowid='id', "
            "tokenize='trigram case_sensitive 1')",
            "INSERT INTO deepmemory_items_fts (deepmemory_items_fts) VALUES ('rebuild')",
            # Every row is indexed (NULL text indexes nothing), as FTS5 requires.
            "CREATE TRIGGER deepmemory_fts_insert AFTER INSERT ON deepmemory_items BEGIN "
            "INSERT INTO deepmemory_items_fts (rowid, grep_text) VALUES (new.id, new.grep_text); "
            "END",
            "CREATE TRIGGER deepmemory_fts_delete AFTER DELETE ON deepmemory_items BEGIN "
            "INSERT INTO deepmemory_items_fts (deepmemory_items_fts, rowid, grep_text) "
            "VALUES ('delete', old.id, old.grep_text); END",
            # One trigger, so the old entry is removed before the new one is added.
            "CREATE TRIGGER deepmemory_fts_update AFTER UPDATE ON deepmemory_items BEGIN "
            "INSERT INTO deepmemory_items_fts (deepmemory_items_fts, rowid, grep_text) "
            "VALUES ('delete', old.id, old.grep_text); "
            "INSERT INTO deepmemory_items_fts (rowid, grep_text) VALUES (new.id, new.grep_text); "
            "END",
        ),
        postgres=(
            # Installed once per database, next to other extensions, not in our schema
            # (dropping a deepmemory schema must not drop the extension).
            "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public",
            "CREATE INDEX deepmemory_items_grep ON deepmemory_items USING gin "
            "((COALESCE(text_override, value ->> 'content')) gin_trgm_ops) "
            "WHERE encoding = 'utf-8'",
        ),
    ),
    Migration(
        "m003_revisions",
        sqlite=_revision_tables("sqlite"),
        postgres=_revision_tables("postgres"),
    ),
    Migration(
        "m004_name_index",
        # A file's name (the key's last segment), indexed: a glob such as
        # "**/milestone-*.md" then reads only the names that start with "milestone-".
        # SQLite: an expression index (a generated column here trips SQLite's schema
        # reload once LangGraph's checkpointer shares the file); queries repeat the
        # expression (``_sql.NAME_SQL``).
        sqlite=(
            f"CREATE INDEX deepmemory_items_name ON deepmemory_items (namespace, ({NAME_SQL}))",
        ),
        postgres=(
            'ALTER TABLE deepmemory_items ADD COLUMN name text COLLATE "C" '
            f"GENERATED ALWAYS AS ({NAME_SQL}) STORED",
            "CREATE INDEX deepmemory_items_name ON deepmemory_items (namespace, name)",
        ),
    ),
    Migration(
        "m005_reads",
        # When a file was last read, where reads refresh its time to live (``_expiry``);
        # no row: its last use is its last write (``updated_at``). A table of its own:
        # recording a read never rewrites the file's row (on SQLite, adding a column
        # to deepmemory_items also broke INSERT ... RETURNING after a schema reload).
        # A deleted file's reads go with it (a trigger: every way of deleting is covered).
        sqlite=(
            "CREATE TABLE deepmemory_reads (namespace TEXT NOT NULL, key TEXT NOT NULL, "
            "accessed_at TEXT NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID",
            "CREATE TRIGGER deepmemory_reads_forget AFTER DELETE ON deepmemory_items BEGIN "
            "DELETE FROM deepmemory_reads WHERE namespace = old.namespace AND key = old.key; END",
        ),
        postgres=(
            'CREATE TABLE deepmemory_reads (namespace text COLLATE "C" NOT NULL, '
            'key text COLLATE "C" NOT NULL, accessed_at timestamptz NOT NULL, '
            "PRIMARY KEY (namespace, key))",
            "CREATE FUNCTION deepmemory_reads_forget() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN DELETE FROM deepmemory_reads WHERE namespace = OLD.namespace AND key = OLD.key; "
            "RETURN NULL; END $$",
            "CREATE TRIGGER deepmemory_reads_forget AFTER DELETE ON deepmemory_items "
            "FOR EACH ROW EXECUTE FUNCTION deepmemory_reads_forget()",
        ),
    ),
    Migration(
        "m006_changes",
        # What changed since the memory map was last built, and the files it shows,
        # without reading the namespace (``_recent``). Every write takes a new version
        # from the database's counter, so the newest version of a namespace (an index
        # seek on (namespace, version)) moves on every write; deletes are counted per
        # namespace in deepmemory_deletions (a trigger: every way of deleting counts).
        # The same index lists the most recently changed files first.
        sqlite=(
            "CREATE INDEX deepmemory_items_version ON deepmemory_items (namespace, version)",
            "CREATE TABLE deepmemory_deletions (namespace TEXT PRIMARY KEY, "
            "deletes INTEGER NOT NULL) WITHOUT ROWID",
            "CREATE TRIGGER deepmemory_deletions_count AFTER DELETE ON deepmemory_items BEGIN "
            "INSERT INTO deepmemory_deletions (namespace, deletes) VALUES (old.namespace, 1) "
            "ON CONFLICT (namespace) DO UPDATE SET deletes = deletes + 1; END",
        ),
        postgres=(
            "CREATE INDEX deepmemory_items_version ON deepmemory_items (namespace, version)",
            'CREATE TABLE deepmemory_deletions (namespace text COLLATE "C" PRIMARY KEY, '
            "deletes bigint NOT NULL)",
            # Once per statement (a recursive delete is one row update per namespace),
            # and only deletes touch this table: writers never wait on it.
            "CREATE FUNCTION deepmemory_deletions_count() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO deepmemory_deletions (namespace, deletes) "
            "SELECT namespace, count(*) FROM gone GROUP BY namespace ORDER BY namespace "
            "ON CONFLICT (namespace) DO UPDATE "
            "SET deletes = deepmemory_deletions.deletes + excluded.deletes; "
            "RETURN NULL; END $$",
            "CREATE TRIGGER deepmemory_deletions_count AFTER DELETE ON deepmemory_items "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            "EXECUTE FUNCTION deepmemory_deletions_count()",
        ),
    ),
    Migration(
        "m007_name_length",
        # Names by length, then text: a glob whose name part has a fixed length and a
        # literal start ("**/f1?.md") seeks straight to the six-character names from
        # "f1", where the name index alone also reads every longer name from "f1".
        sqlite=(
            "CREATE INDEX deepmemory_items_name_length ON deepmemory_items "
            f"(namespace, length({NAME_SQL}), ({NAME_SQL}))",
        ),
        postgres=(
            "CREATE INDEX deepmemory_items_name_length ON deepmemory_items "
            "(namespace, length(name), name)",
        ),
    ),
    Migration(
        "m008_grep_after_writes",
        # PostgreSQL only. New entries of a GIN index wait in a pending list (4 MB by
        # default) that every search reads in full until a vacuum merges it: 256 kB
        # keeps that read short at a small cost to bulk loads. And a table without
        # statistics (never analyzed: autovacuum off, or not yet run) gets plans that
        # ignore the trigram index, so the table is analyzed here and after large
        # batches (``PostgresStore``).
        sqlite=(),
        postgres=(
            "ALTER INDEX deepmemory_items_grep SET (gin_pending_list_limit = 256)",
            "SELECT gin_clean_pending_list('deepmemory_items_grep'::regclass)",
            "ANALYZE deepmemory_items",
        ),
    ),
    Migration(
        "m009_item_ttl",
        # LangGraph's per-item TTL: an item put with ``ttl`` minutes expires at
        # ``expires_at`` (seconds since the epoch), moved on by reads that refresh it.
        sqlite=(
            "ALTER TABLE deepmemory_items ADD COLUMN ttl_minutes REAL",
            "ALTER TABLE deepmemory_items ADD COLUMN expires_at REAL",
            "CREATE INDEX deepmemory_items_expiry ON deepmemory_items (expires_at) "
            "WHERE expires_at IS NOT NULL",
        ),
        postgres=(
            "ALTER TABLE deepmemory_items ADD COLUMN ttl_minutes double precision, "
            "ADD COLUMN expires_at double precision",
            "CREATE INDEX deepmemory_items_expiry ON deepmemory_items (expires_at) "
            "WHERE expires_at IS NOT NULL",
        ),
    ),
    Migration(
        "m010_vectors",
        # LangGraph's semantic index (``_vectors``): one row per item, field and
        # element, stamped with the item's version (a later write that does not embed
        # leaves them unmatched). Deleting an item deletes its vectors.
        sqlite=(
            "CREATE TABLE deepmemory_vectors (namespace TEXT NOT NULL, key TEXT NOT NULL, "
            "field TEXT NOT NULL, version INTEGER, embedding BLOB NOT NULL, "
            "norm REAL NOT NULL, PRIMARY KEY (namespace, key, field)) WITHOUT ROWID",
            "CREATE TRIGGER deepmemory_vectors_forget AFTER DELETE ON deepmemory_items "
            "BEGIN DELETE FROM deepmemory_vectors "
            "WHERE namespace = old.namespace AND key = old.key; END",
        ),
        postgres=(
            'CREATE TABLE deepmemory_vectors (namespace text COLLATE "C" NOT NULL, '
            'key text COLLATE "C" NOT NULL, field text NOT NULL, version bigint, '
            "embedding real[] NOT NULL, norm double precision NOT NULL, "
            "PRIMARY KEY (namespace, key, field))",
            "CREATE FUNCTION deepmemory_vectors_forget() RETURNS trigger "
            "LANGUAGE plpgsql AS $fn$ BEGIN "
            "DELETE FROM deepmemory_vectors AS v USING gone AS g "
            "WHERE v.namespace = g.namespace AND v.key = g.key; RETURN NULL; END $fn$",
            "CREATE TRIGGER deepmemory_vectors_forget AFTER DELETE ON deepmemory_items "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            "EXECUTE FUNCTION deepmemory_vectors_forget()",
        ),
    ),
    Migration(
        "m011_move_revisions",
        # History records moves (op 'move'). SQLite cannot change a CHECK constraint:
        # the table is rebuilt under the same name, rows and primary key kept.
        sqlite=(
            _REVISIONS.replace("deepmemory_revisions", "deepmemory_revisions_m011")
            .replace("'restore')", "'restore', 'move')")
            .format(**_TYPES["sqlite"]),
            "INSERT INTO deepmemory_revisions_m011 SELECT * FROM deepmemory_revisions",
            "DROP TABLE deepmemory_revisions",
            "ALTER TABLE deepmemory_revisions_m011 RENAME TO deepmemory_revisions",
        ),
        postgres=(
            "ALTER TABLE deepmemory_revisions DROP CONSTRAINT deepmemory_revisions_op_check",
            "ALTER TABLE deepmemory_revisions ADD CONSTRAINT deepmemory_revisions_op_check "
            "CHECK (op IN ('write', 'edit', 'delete', 'restore', 'move'))",
        ),
    ),
    Migration(
        "m012_passages",
        # Recall by meaning over files (``_passages``): each text file's passages with
        # their line ranges and embeddings, and the version of the file they were cut
        # from (a file whose version moved on is not searched until indexed again).
        # Deleting an item deletes both.
        sqlite=(
            "CREATE TABLE deepmemory_passages (namespace TEXT NOT NULL, key TEXT NOT NULL, "
            "seq INTEGER NOT NULL, start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, "
            "digest TEXT NOT NULL, text TEXT NOT NULL, embedding BLOB NOT NULL, "
            "norm REAL NOT NULL, PRIMARY KEY (namespace, key, seq)) WITHOUT ROWID",
            "CREATE TABLE deepmemory_passage_files (namespace TEXT NOT NULL, "
            "key TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (namespace, key)) "
            "WITHOUT ROWID",
            "CREATE TRIGGER deepmemory_passages_forget AFTER DELETE ON deepmemory_items "
            "BEGIN DELETE FROM deepmemory_passages "
            "WHERE namespace = old.namespace AND key = old.key; "
            "DELETE FROM deepmemory_passage_files "
            "WHERE namespace = old.namespace AND key = old.key; END",
        ),
        postgres=(
            'CREATE TABLE deepmemory_passages (namespace text COLLATE "C" NOT NULL, '
            'key text COLLATE "C" NOT NULL, seq integer NOT NULL, start_line integer NOT NULL, '
            "end_line integer NOT NULL, digest text NOT NULL, text text NOT NULL, "
            "embedding real[] NOT NULL, norm double precision NOT NULL, "
            "PRIMARY KEY (namespace, key, seq))",
            'CREATE TABLE deepmemory_passage_files (namespace text COLLATE "C" NOT NULL, '
            'key text COLLATE "C" NOT NULL, version bigint NOT NULL, '
            "PRIMARY KEY (namespace, key))",
            "CREATE FUNCTION deepmemory_passages_forget() RETURNS trigger "
            "LANGUAGE plpgsql AS $fn$ BEGIN "
            "DELETE FROM deepmemory_passages AS p USING gone AS g "
            "WHERE p.namespace = g.namespace AND p.key = g.key; "
            "DELETE FROM deepmemory_passage_files AS f USING gone AS g "
            "WHERE f.namespace = g.namespace AND f.key = g.key; RETURN NULL; END $fn$",
            "CREATE TRIGGER deepmemory_passages_forget AFTER DELETE ON deepmemory_items "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            "EXECUTE FUNCTION deepmemory_passages_forget()",
        ),
    ),
    Migration(
        "m013_deletions_per_transaction",
        # PostgreSQL: deletes were counted in one row per namespace, so two transactions
        # that both deleted there waited on each other's count while holding item rows:
        # a deadlock under many concurrent writers (LangGraph's 60,000-call test). Now
        # each transaction counts in a row of its own (never waited on); the count of a
        # namespace is their sum, and ``prune_history()`` folds finished transactions'
        # rows into one. SQLite has one writer at a time: unchanged.
        sqlite=(),
        postgres=(
            "ALTER TABLE deepmemory_deletions ADD COLUMN txid bigint NOT NULL DEFAULT 0",
            "ALTER TABLE deepmemory_deletions DROP CONSTRAINT deepmemory_deletions_pkey",
            "ALTER TABLE deepmemory_deletions ADD PRIMARY KEY (namespace, txid)",
            "CREATE OR REPLACE FUNCTION deepmemory_deletions_count() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO deepmemory_deletions (namespace, txid, deletes) "
            "SELECT namespace, txid_current(), count(*) FROM gone GROUP BY namespace "
            "ON CONFLICT (namespace, txid) DO UPDATE "
            "SET deletes = deepmemory_deletions.deletes + excluded.deletes; "
            "RETURN NULL; END $$",
        ),
    ),
    Migration(
        "m014_space",
        # Bytes held by each namespace's files, kept by triggers, so a size limit reads
        # one number instead of summing every file (``_expiry.file_space``). Same
        # layout as the deletion counts: one row per namespace on SQLite (one writer at
        # a time); on PostgreSQL one row per namespace and writing transaction (never
        # waited on), summed when read and folded into the row of txid 0.
        sqlite=(
            "CREATE TABLE deepmemory_space (namespace TEXT PRIMARY KEY, "
            "bytes INTEGER NOT NULL) WITHOUT ROWID",
            f"INSERT INTO deepmemory_space (namespace, bytes) SELECT namespace, sum(size) "
            f"FROM deepmemory_items WHERE {_FILE_KEY} GROUP BY namespace",
            _sqlite_space_trigger("insert", "INSERT", "new.size", "new"),
            _sqlite_space_trigger("delete", "DELETE", "-old.size", "old"),
            # A key or a size that changes: out with the old row, in with the new one.
            _sqlite_space_trigger(
                "update_old", "UPDATE OF namespace, key, size", "-old.size", "old"
            ),
            _sqlite_space_trigger(
                "update_new", "UPDATE OF namespace, key, size", "new.size", "new"
            ),
        ),
        postgres=(
            'CREATE TABLE deepmemory_space (namespace text COLLATE "C" NOT NULL, '
            "txid bigint NOT NULL, bytes bigint NOT NULL, PRIMARY KEY (namespace, txid))",
            "INSERT INTO deepmemory_space (namespace, txid, bytes) SELECT namespace, 0, sum(size) "
            f"FROM deepmemory_items WHERE {_FILE_KEY} GROUP BY namespace",
            "CREATE FUNCTION deepmemory_space_count() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            f"IF TG_OP <> 'INSERT' AND {_FILE_KEY.replace('key', 'OLD.key')} THEN "
            "INSERT INTO deepmemory_space (namespace, txid, bytes) "
            "VALUES (OLD.namespace, txid_current(), -OLD.size) "
            "ON CONFLICT (namespace, txid) DO UPDATE "
            "SET bytes = deepmemory_space.bytes + excluded.bytes; END IF; "
            f"IF TG_OP <> 'DELETE' AND {_FILE_KEY.replace('key', 'NEW.key')} THEN "
            "INSERT INTO deepmemory_space (namespace, txid, bytes) "
            "VALUES (NEW.namespace, txid_current(), NEW.size) "
            "ON CONFLICT (namespace, txid) DO UPDATE "
            "SET bytes = deepmemory_space.bytes + excluded.bytes; END IF; "
            "RETURN NULL; END $$",
            "CREATE TRIGGER deepmemory_space_insert AFTER INSERT ON deepmemory_items "
            "FOR EACH ROW EXECUTE FUNCTION deepmemory_space_count()",
            "CREATE TRIGGER deepmemory_space_delete AFTER DELETE ON deepmemory_items "
            "FOR EACH ROW EXECUTE FUNCTION deepmemory_space_count()",
            "CREATE TRIGGER deepmemory_space_update AFTER UPDATE ON deepmemory_items "
            "FOR EACH ROW WHEN (OLD.size <> NEW.size OR OLD.key <> NEW.key "
            "OR OLD.namespace <> NEW.namespace) EXECUTE FUNCTION deepmemory_space_count()",
        ),
    ),
]

_SQLITE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS deepmemory_migrations "
    "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)
_POSTGRES_LEDGER = (
    "CREATE TABLE IF NOT EXISTS deepmemory_migrations "
    "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)


def _pending(until: str | None) -> list[Migration]:
    names = [m.name for m in MIGRATIONS]
    if until is None:
        return list(MIGRATIONS)
    if until not in names:
        raise ValueError(f"Unknown migration {until!r}; known: {', '.join(names)}.")
    return MIGRATIONS[: names.index(until) + 1]


def applied_sqlite(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in a SQLite database, oldest first."""
    try:
        rows = conn.execute("SELECT name FROM deepmemory_migrations ORDER BY name").fetchall()
    except sqlite3.OperationalError:
        return []
    return [str(row[0]) for row in rows]


def migrate_sqlite(conn: sqlite3.Connection, *, until: str | None = None) -> list[str]:
    """Apply the pending migrations (up to and including ``until``); return their names.

    ``conn`` must be in autocommit mode (``isolation_level=None``).

    Example:
        >>> import sqlite3
        >>> migrate_sqlite(sqlite3.connect(":memory:", isolation_level=None))
        ['m001_items', 'm002_grep_index', 'm003_revisions']
    """
    wanted = _pending(until)
    if {m.name for m in wanted} <= set(applied_sqlite(conn)):
        return []  # The common case: no lock taken.
    done = []
    for migration in wanted:
        conn.execute("BEGIN IMMEDIATE")  # Concurrent starters wait here, one at a time.
        try:
            conn.execute(_SQLITE_LEDGER)
            seen = conn.execute(
                "SELECT 1 FROM deepmemory_migrations WHERE name = ?", (migration.name,)
            ).fetchone()
            if seen is None:
                for statement in migration.sqlite:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO deepmemory_migrations (name) VALUES (?)", (migration.name,)
                )
                done.append(migration.name)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return done


def _needs_trigrams(statement: str) -> bool:
    """A statement of the grep index (m002, m008), which needs the pg_trgm extension."""
    return "pg_trgm" in statement or "deepmemory_items_grep" in statement


def _schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    return found.fetchone() is not None


def _has_trigrams(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server offers pg_trgm.

    Nearly every one does (it ships with PostgreSQL's contrib); where it does not (a
    minimal build), the grep index is left out and grep reads every text file of the
    searched directory: still correct.
    """
    found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    return found.fetchone() is not None


def postgres_search_path(schema: str) -> sql.Composed:
    """``SET search_path`` for a deepmemory schema (``public`` stays reachable for pg_trgm)."""
    from psycopg import sql

    return sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema))


def applied_postgres(conn: psycopg.Connection[Any], *, schema: str) -> list[str]:
    """Names of the migrations recorded in a PostgreSQL schema, oldest first."""
    from psycopg import sql

    table = sql.Identifier(schema, "deepmemory_migrations")
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".deepmemory_migrations',)
    ).fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(sql.SQL("SELECT name FROM {} ORDER BY name").format(table)).fetchall()
    return [str(row[0]) for row in rows]


def migrate_postgres(
    conn: psycopg.Connection[Any], *, schema: str = "public", until: str | None = None
) -> list[str]:
    """Create ``schema`` if needed and apply the pending migrations; return their names.

    ``conn`` must be in autocommit mode; its ``search_path`` is left pointing at
    ``schema``.
    """
    from psycopg import sql

    wanted = _pending(until)
    if {m.name for m in wanted} <= set(applied_postgres(conn, schema=schema)):
        conn.execute(postgres_search_path(schema))
        return []
    done = []
    trigrams: bool | None = None  # asked once, when a statement needs it
    for migration in wanted:
        with conn.transaction():
            # Serialises concurrent starters on this schema until the commit.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"deepmemory:{schema}",))
            # Only when missing: even IF NOT EXISTS needs CREATE on the database, which a
            # user given a schema of its own by an administrator usually lacks.
            if not _schema_exists(conn, schema):
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(postgres_search_path(schema))
            conn.execute(_POSTGRES_LEDGER)
            seen = conn.execute(
                "SELECT 1 FROM deepmemory_migrations WHERE name = %s", (migration.name,)
            ).fetchone()
            if seen is None:
                for statement in migration.postgres:
                    if _needs_trigrams(statement):
                        if trigrams is None:
                            trigrams = _has_trigrams(conn)
                        if not trigrams:
                            continue  # grep scans instead of using the index (see below)
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO deepmemory_migrations (name) VALUES (%s)", (migration.name,)
                )
                done.append(migration.name)
    return done
