"""Recall by meaning over files: passages, their embeddings, and search (m012).

A text file is cut into passages (``backends._chunks``); each passage is embedded with
the store's ``index`` embedder and kept in ``deepmemory_passages`` with its line range.
``deepmemory_passage_files`` records which version of the file the passages were cut
from: a file whose version moved on (an edit, a write through LangGraph's ``put``, an
embedder that failed) is *unindexed* and left out of searches until it is indexed
again, so a search never points at lines that no longer hold what it found.

Indexing a file (:func:`index_file`, driven by the store) reads the file and the
fingerprints of its current passages, embeds only passages whose text is new (an edit
re-embeds the passages it changed), and replaces the passages in one transaction,
only if the file still has the version it read: a racing edit leaves the file
unindexed, never indexed with stale passages.

Search ranks the passages under a directory (namespace and key range, live files only,
as for grep) two ways, by vector similarity to the query and by how many of the
query's words they hold (the whole query as a phrase counts most), and fuses the two
rankings (reciprocal rank fusion), so an exact name still comes first while a
paraphrase is found by meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from deepmemory.backends._chunks import chunk_text
from deepmemory.backends.protocol import Namespace
from deepmemory.stores._sql import (
    FILE_TEXT,
    TEXT_PARAM,
    Dialect,
    Row,
    Step,
    _fresh,
    _step,
    dir_prefix,
    encode_namespace,
    prefix_end,
)
from deepmemory.stores._vectors import Vector, norm, pack, pg_similarity, unpack

# Candidates each ranking contributes before fusion, and the fusion constant.
CANDIDATES = 50
RRF_K = 60
MAX_WORDS = 8


@dataclass(frozen=True, slots=True)
class Found:
    """A passage as a search finds it (``key``: the file's key)."""

    key: str
    start_line: int
    end_line: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Embed:
    """A request to embed ``texts`` (documents), yielded by :func:`index_file`."""

    texts: list[str]


def _range(dir_key: str, params: dict[str, Any], dialect: Dialect, alias: str) -> str:
    lo = dir_prefix(dir_key)
    params |= {"lo": lo, "hi": prefix_end(lo)}
    text = TEXT_PARAM[dialect].format
    return f"{alias}.key > {text(':lo')} AND {alias}.key < {text(':hi')}"


def _decode(dialect: Dialect, blob: Any) -> Vector:
    return list(unpack(blob)) if dialect == "sqlite" else [float(x) for x in blob]


# -- indexing ------------------------------------------------------------------------------


def _state(dialect: Dialect, namespace: Namespace, key: str) -> Step[Row | None]:
    """(version, encoding, text, indexed version) of a file; ``None`` if it is gone."""
    params = {"ns": encode_namespace(namespace), "key": key}
    sql = (
        f"SELECT i.version, i.encoding, {FILE_TEXT[dialect]}, f.version "
        "FROM deepmemory_items AS i LEFT JOIN deepmemory_passage_files AS f "
        "ON f.namespace = i.namespace AND f.key = i.key "
        "WHERE i.namespace = :ns AND i.key = :key"
    )
    return _step(dialect, sql, params, lambda rows: rows[0] if rows else None)


def _known(dialect: Dialect, namespace: Namespace, key: str) -> Step[dict[str, Vector]]:
    """The embeddings of the file's current passages, by fingerprint."""
    params = {"ns": encode_namespace(namespace), "key": key}
    sql = "SELECT digest, embedding FROM deepmemory_passages WHERE namespace = :ns AND key = :key"
    return _step(dialect, sql, params, lambda rows: {r[0]: _decode(dialect, r[1]) for r in rows})


def _replace(
    dialect: Dialect,
    namespace: Namespace,
    key: str,
    version: int,
    rows: list[tuple[int, int, int, str, str, Vector]],
) -> list[Step[None]]:
    """The file's passages are ``rows`` as of ``version``, if it still has that version."""
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "key": key, "v": version}
    current = (
        "EXISTS (SELECT 1 FROM deepmemory_items AS i "
        "WHERE i.namespace = :ns AND i.key = :key AND i.version = :v)"
    )
    text = TEXT_PARAM[dialect].format
    steps = [
        _step(
            dialect,
            f"DELETE FROM deepmemory_passages WHERE namespace = :ns AND key = :key AND {current}",
            params,
            _none,
            write=True,
        )
    ]
    if rows:
        columns = "namespace, key, seq, start_line, end_line, digest, text, embedding, norm"
        if dialect == "sqlite":
            params["rows"] = json.dumps([[s, a, b, d, t] for s, a, b, d, t, _ in rows])
            for i, (*_, vector) in enumerate(rows):
                params |= {f"e{i}": pack(vector), f"n{i}": norm(vector)}
            embeddings = " ".join(f"WHEN {i} THEN :e{i}" for i in range(len(rows)))
            norms = " ".join(f"WHEN {i} THEN :n{i}" for i in range(len(rows)))
            sql = (
                f"INSERT INTO deepmemory_passages ({columns}) SELECT :ns, :key, "
                "json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
                "json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
                f"json_extract(value, '$[4]'), CASE CAST(key AS INTEGER) {embeddings} END, "
                f"CASE CAST(key AS INTEGER) {norms} END FROM json_each(:rows) WHERE {current}"
            )
        else:
            params |= {
                "seqs": [r[0] for r in rows],
                "starts": [r[1] for r in rows],
                "ends": [r[2] for r in rows],
                "digests": [r[3] for r in rows],
                "texts": [r[4] for r in rows],
                "embeddings": ["{" + ",".join(map(repr, r[5])) + "}" for r in rows],
                "norms": [norm(r[5]) for r in rows],
            }
            sql = (
                f"INSERT INTO deepmemory_passages ({columns}) SELECT {text(':ns')}, "
                f"{text(':key')}, s, a, b, d, t, CAST(e AS real[]), n FROM unnest("
                "CAST(:seqs AS int[]), CAST(:starts AS int[]), CAST(:ends AS int[]), "
                "CAST(:digests AS text[]), CAST(:texts AS text[]), CAST(:embeddings AS text[]), "
                f"CAST(:norms AS float8[])) AS x(s, a, b, d, t, e, n) WHERE {current}"
            )
        steps.append(_step(dialect, sql, params, _none, write=True))
    mark = (
        "INSERT INTO deepmemory_passage_files (namespace, key, version) "
        f"SELECT {text(':ns')}, {text(':key')}, :v WHERE {current} "
        "ON CONFLICT (namespace, key) DO UPDATE SET version = excluded.version"
    )
    steps.append(_step(dialect, mark, params, _none, write=True))
    return steps


def _none(rows: list[Row]) -> None:
    return None


def index_file(
    dialect: Dialect, namespace: Namespace, key: str
) -> Generator[Step[Any] | Embed | list[Step[Any]], Any, bool]:
    """Index one file; whether there was anything to do.

    Yields steps to run (a list: in one transaction) and texts to embed.
    """
    state = yield _state(dialect, namespace, key)
    if state is None:
        return False
    version, encoding, content, indexed = state
    if indexed == version:
        return False
    chunks = chunk_text(content) if encoding == "utf-8" and content else []
    known = yield _known(dialect, namespace, key)
    new = sorted({c.digest: c.text for c in chunks if c.digest not in known}.items())
    if new:
        vectors = yield Embed([text for _, text in new])
        known = known | dict(zip([digest for digest, _ in new], vectors, strict=True))
    rows = [
        (seq, c.start_line, c.end_line, c.digest, c.text, known[c.digest])
        for seq, c in enumerate(chunks)
    ]
    yield _replace(dialect, namespace, key, int(version), rows)
    return True


def unindexed(
    dialect: Dialect, namespace: Namespace, dir_key: str, fresh: str | None
) -> Step[list[str]]:
    """Text files below ``dir_key`` whose passages are missing or cut from an older version."""
    params: dict[str, Any] = {"ns": encode_namespace(namespace)}
    sql = (
        "SELECT i.key FROM deepmemory_items AS i LEFT JOIN deepmemory_passage_files AS f "
        "ON f.namespace = i.namespace AND f.key = i.key "
        f"WHERE i.namespace = :ns AND {_range(dir_key, params, dialect, 'i')} "
        "AND i.encoding = 'utf-8' AND (f.version IS NULL OR f.version <> i.version)"
        f"{_fresh(dialect, fresh, params, 'i')} ORDER BY i.key"
    )
    return _step(dialect, sql, params, lambda rows: [r[0] for r in rows])


# -- search --------------------------------------------------------------------------------


def words_of(query: str) -> tuple[str, list[str]]:
    """The query as a lower-case phrase, and its distinct words of 3 letters or more."""
    phrase = " ".join(query.lower().split())
    words = list(dict.fromkeys(w for w in re.findall(r"\w+", phrase) if len(w) >= 3))
    return phrase, words[:MAX_WORDS]


def search(
    dialect: Dialect,
    namespace: Namespace,
    dir_key: str,
    query: str,
    vector: Vector,
    distance: str,
    fresh: str | None,
) -> list[Step[list[Found]]]:
    """The best passages by meaning and by words (two rankings, fused by :func:`fuse`).

    By words: the whole query as a phrase counts most, then how many of its words a
    passage holds; ties go to the closer in meaning.
    """
    phrase, words = words_of(query)
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "limit": CANDIDATES}
    where = (
        "FROM deepmemory_passages AS v JOIN deepmemory_passage_files AS f "
        "ON f.namespace = v.namespace AND f.key = v.key "
        "JOIN deepmemory_items AS i ON i.namespace = v.namespace AND i.key = v.key "
        f"WHERE v.namespace = :ns AND {_range(dir_key, params, dialect, 'v')} "
        f"AND f.version = i.version{_fresh(dialect, fresh, params, 'i')}"
    )
    if dialect == "sqlite":
        params |= {"qvec": pack(vector), "qnorm": norm(vector), "distance": distance}
        score = "deepmemory_similarity(v.embedding, v.norm, :qvec, :qnorm, :distance)"
        find = "instr"
    else:
        params |= {"qvec": vector, "qnorm": norm(vector)}
        score = pg_similarity(distance)
        find = "strpos"
    # Lines joined by spaces, so that a phrase spanning a line break still matches.
    flat = (
        "replace(lower(v.text), char(10), ' ')"
        if dialect == "sqlite"
        else ("replace(lower(v.text), chr(10), ' ')")
    )
    hits = [
        f"(CASE WHEN {find}(lower(v.text), :w{i}) > 0 THEN 1 ELSE 0 END)" for i in range(len(words))
    ]
    params |= {f"w{i}": w for i, w in enumerate(words)} | {"phrase": phrase}
    lexical = " + ".join([f"(CASE WHEN {find}({flat}, :phrase) > 0 THEN 100 ELSE 0 END)", *hits])
    columns = "v.key, v.start_line, v.end_line, v.text"

    def finish(rows: list[Row]) -> list[Found]:
        return [Found(r[0], int(r[1]), int(r[2]), r[3], float(r[4] or 0)) for r in rows]

    by_meaning = (
        f"SELECT {columns}, {score} AS s {where} ORDER BY s DESC, v.key, v.seq LIMIT :limit"
    )
    by_words = (
        f"SELECT {columns}, {score} AS s, {lexical} AS w {where} AND ({lexical}) > 0 "
        "ORDER BY w DESC, s DESC, v.key, v.seq LIMIT :limit"
    )
    return [
        _step(dialect, by_meaning, params, finish, custom_plan=True),
        _step(dialect, by_words, dict(params), finish, custom_plan=True),
    ]


def fuse(by_meaning: list[Found], by_words: list[Found], limit: int) -> list[Found]:
    """Reciprocal rank fusion of the two rankings: the best ``limit`` passages."""
    fused: dict[tuple[str, int], float] = {}
    found: dict[tuple[str, int], Found] = {}
    for ranking in (by_meaning, by_words):
        for rank, passage in enumerate(ranking):
            ident = (passage.key, passage.start_line)
            fused[ident] = fused.get(ident, 0.0) + 1.0 / (RRF_K + rank + 1)
            found.setdefault(ident, passage)
    best = sorted(fused, key=lambda ident: (-fused[ident], ident))[:limit]
    return [found[ident] for ident in best]
