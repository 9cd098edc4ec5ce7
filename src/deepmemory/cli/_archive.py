r"""The memory archive: JSON Lines, one file a line, the same from every store.

Each line is one file::

    {"namespace": ["memories", "alice"], "path": "/preferences.txt", "encoding": "utf-8",
     "content": "Metric units\n", "created_at": "2025-...", "modified_at": "2025-..."}

``path`` is the file's key in its namespace, i.e. its path below ``/memories/``.
``encoding`` is ``utf-8`` (``content`` is the text) or ``base64`` (``content`` is the
bytes, base64-encoded). ``created_at`` and ``modified_at`` are kept as stored.

Invariants:

* **Byte-exact.** A file's bytes and timestamps survive export then import, binary
  files included.
* **Store-independent.** The encoding is normalised as uploads do (valid UTF-8 as
  text, anything else base64), and lines are sorted by namespace then path, so the
  same files export to the same archive from InMemory, SQLite or PostgreSQL (which
  keeps text containing NUL as base64 internally).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deepmemory import paths
from deepmemory.backends._text import file_from_bytes, file_to_bytes
from deepmemory.backends.protocol import Namespace, StoredFile, SupportsFileQueries
from deepmemory.cli._config import MEMORY_PREFIX
from deepmemory.errors import DeepMemoryError, InvalidPathError

if TYPE_CHECKING:  # the stores import LangGraph; `deepmemory --help` must not
    from langgraph.store.base import BaseStore

FIELDS = ("namespace", "path", "encoding", "content", "created_at", "modified_at")
_ALL = 2**31  # list_namespaces pages; a limit this large is "all of them"
_CAS_ATTEMPTS = 5


class ArchiveError(DeepMemoryError):
    """An archive line that cannot be imported."""


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    """One file of an archive."""

    namespace: Namespace
    path: str
    file: StoredFile

    def to_line(self) -> str:
        """The archive line (JSON, no newline)."""
        record: dict[str, Any] = {"namespace": list(self.namespace), "path": self.path}
        record |= {"encoding": self.file.encoding, "content": self.file.content}
        record |= {"created_at": self.file.created_at, "modified_at": self.file.modified_at}
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_line(cls, text: str, number: int) -> ArchivedFile:
        """Parse and check one line (``number`` is 1-based, for messages).

        Raises:
            ArchiveError: the line is not a valid archived file.
        """

        def bad(why: str) -> ArchiveError:
            return ArchiveError(f"Line {number} of the archive {why}; nothing was imported.")

        try:
            record = json.loads(text)
        except ValueError:
            raise bad("is not JSON") from None
        if not isinstance(record, dict):
            raise bad("is not a JSON object")
        missing = [f for f in FIELDS[:4] if f not in record]
        if missing:
            raise bad(f"has no {missing[0]!r}")
        namespace, path, encoding, content = (record[f] for f in FIELDS[:4])
        stamps = [record.get(f, "") for f in FIELDS[4:]]
        if not isinstance(namespace, list) or not all(isinstance(p, str) for p in namespace):
            raise bad("has a namespace that is not a list of strings")
        try:
            from deepmemory.backends.store import validate_namespace

            ns = validate_namespace(namespace)
        except DeepMemoryError as exc:
            raise bad(f"has an unusable namespace ({exc})") from None
        try:
            valid = isinstance(path, str) and paths.validate_file(path) == path
        except InvalidPathError:
            valid = False
        if not valid:
            raise bad(f"has an invalid path {path!r}")
        if encoding not in ("utf-8", "base64") or not isinstance(content, str):
            raise bad("needs encoding 'utf-8' or 'base64' and a string content")
        if not all(isinstance(s, str) for s in stamps):
            raise bad("has timestamps that are not strings")
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else None
            stored = StoredFile(content, encoding, stamps[0], stamps[1])
            data = data if data is not None else file_to_bytes(stored)
        except (binascii.Error, UnicodeEncodeError):
            raise bad(f"has content that is not valid {encoding}") from None
        return cls(ns, path, file_from_bytes(data, created_at=stamps[0], modified_at=stamps[1]))


def portable(file: StoredFile) -> StoredFile:
    """``file`` with the archive's encoding: UTF-8 as text, anything else base64."""
    try:
        data = file_to_bytes(file)
    except (binascii.Error, ValueError):
        return file  # not decodable as stored: keep it exactly as it is
    return file_from_bytes(data, created_at=file.created_at, modified_at=file.modified_at)


def memory_namespaces(store: BaseStore, user: str | None) -> list[Namespace]:
    """The namespaces to export: one user's, or every ``("memories", ...)`` one."""
    if user is not None:
        return [(MEMORY_PREFIX, user)]
    found = store.list_namespaces(prefix=(MEMORY_PREFIX,), limit=_ALL)
    return sorted(tuple(ns) for ns in found)


def export_files(store: BaseStore, namespaces: Sequence[Namespace]) -> Iterator[ArchivedFile]:
    """Every file of ``namespaces``, sorted by namespace then path, one at a time.

    On our stores the sorted list of paths comes from the database and each file is
    read when its turn comes, so an export holds one file in memory, however large the
    memory. (A plain ``BaseStore`` is read a namespace at a time.)
    """
    for ns in sorted(namespaces):
        if not isinstance(store, SupportsFileQueries):
            from deepmemory.backends.store import iter_namespace_files

            for key, file in sorted(iter_namespace_files(store, ns), key=lambda kv: kv[0]):
                yield ArchivedFile(ns, key, portable(file))
            continue
        for info in store.file_glob(ns, "/", ".*"):  # every file, by path; no contents
            found = store.file_get(ns, info.path)
            if found is not None:  # (deleted meanwhile)
                yield ArchivedFile(ns, info.path, portable(found))


def read_archive(lines: Iterable[str], *, any_namespace: bool = False) -> Iterator[ArchivedFile]:
    """The files of an archive's lines (blank lines are skipped).

    Only users' memory (``("memories", user)``) unless ``any_namespace``: an archive is
    not a way to write into a store's other namespaces (an application's own data).
    """
    for number, line in enumerate(lines, start=1):
        if line.strip():
            entry = ArchivedFile.from_line(line, number)
            ns = entry.namespace
            if not any_namespace and (len(ns) != 2 or ns[0] != MEMORY_PREFIX):
                raise ArchiveError(
                    f"Line {number} of the archive is for namespace {list(ns)!r}, not a "
                    f"user's memory ({[MEMORY_PREFIX, '<user>']!r}); nothing was imported. "
                    "Pass --any-namespace to import it anyway."
                )
            yield entry


def import_file(store: BaseStore, entry: ArchivedFile) -> bool:
    """Write one archived file, timestamps included; return whether it replaced one."""
    if not isinstance(store, SupportsFileQueries):
        existed = store.get(entry.namespace, entry.path) is not None
        store.put(entry.namespace, entry.path, entry.file.to_value(), index=False)
        return existed
    for _ in range(_CAS_ATTEMPTS):
        # Compare-and-swap, not a plain file_put: that would keep the old created_at.
        old = store.file_get(entry.namespace, entry.path)
        expected = 0 if old is None else old.version
        landed = store.file_put(entry.namespace, entry.path, entry.file, expected_version=expected)
        if landed is not None:
            return old is not None
    raise ArchiveError(f"{entry.path!r} kept changing while it was imported; run import again.")
