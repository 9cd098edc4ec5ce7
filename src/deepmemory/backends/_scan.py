"""File queries answered by one linear pass over (key, file) pairs.

The fallback for repositories that cannot ask a database: thread state (a dict) and
any plain LangGraph ``BaseStore`` (one ``search`` of the namespace). Semantics here are
the reference the SQL stores must match (the conformance suite checks both).
"""

from __future__ import annotations

from collections.abc import Iterable

from deepmemory.backends._match import fullmatch, relative_to
from deepmemory.backends._text import split_lines, stored_size
from deepmemory.backends.protocol import FileInfo, GrepMatch, StoredFile


def list_dir(items: Iterable[tuple[str, StoredFile]], dir_key: str) -> list[FileInfo]:
    """Direct children of ``dir_key``; subdirectories as ``is_dir`` entries ending in ``/``."""
    files: dict[str, FileInfo] = {}
    dirs: set[str] = set()
    prefix = "/" if dir_key == "/" else dir_key + "/"
    for key, file in items:
        rel = relative_to(key, dir_key)
        if not rel:
            continue
        head, sep, _ = rel.partition("/")
        if sep:
            dirs.add(prefix + head + "/")
        else:
            files[key] = FileInfo(key, False, stored_size(file), file.modified_at or None)
    entries = list(files.values()) + [FileInfo(d, True) for d in dirs if d[:-1] not in files]
    return sorted(entries, key=lambda e: e.path)


def is_dir(keys: Iterable[str], dir_key: str) -> bool:
    """Whether any key lies below ``dir_key``."""
    return any(relative_to(key, dir_key) for key in keys)


def glob(
    items: Iterable[tuple[str, StoredFile]], dir_key: str, regex: str, rel_prefix: str = ""
) -> list[FileInfo]:
    """Files below ``dir_key`` whose ``rel_prefix + relative key`` fully matches ``regex``."""
    found = []
    for key, file in items:
        rel = relative_to(key, dir_key)
        if rel and fullmatch(regex, rel_prefix + rel):
            found.append(FileInfo(key, False, stored_size(file), file.modified_at or None))
    return sorted(found, key=lambda e: e.path)


def grep(
    items: Iterable[tuple[str, StoredFile]],
    dir_key: str,
    literal: str,
    glob_regex: str | None,
    rel_prefix: str = "",
) -> list[GrepMatch]:
    """Lines containing ``literal`` in text files below ``dir_key`` (optionally glob-filtered)."""
    matches = []
    for key, file in items:
        rel = relative_to(key, dir_key)
        if not rel or file.encoding == "base64" or literal not in file.content:
            continue
        if glob_regex is not None and not fullmatch(glob_regex, rel_prefix + rel):
            continue
        matches.extend(matching_lines(key, file, literal))
    matches.sort(key=lambda m: (m.path, m.line))
    return matches


def matching_lines(path: str, file: StoredFile, literal: str) -> list[GrepMatch]:
    """The lines of one file that contain ``literal`` (binary files never match)."""
    if file.encoding == "base64":
        return []
    return [
        GrepMatch(path, number, line)
        for number, line in enumerate(split_lines(file.content), start=1)
        if literal in line
    ]


def tree_keys(keys: Iterable[str], key: str) -> list[str]:
    """``key`` itself and every key below it."""
    return [k for k in keys if k == key or relative_to(k, key)]
