"""Reading a window of lines: what the database sends back equals splitting the file in Python.

PostgreSQL splits files of ``_lines.WHOLE_BELOW`` bytes or more in SQL and sends only
the window; smaller ones (and every file on SQLite) come back whole. Both paths are
checked against ``_text.split_lines`` on awkward text.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deepmemory.backends._text import split_lines
from deepmemory.backends.protocol import StoredFile
from deepmemory.stores import _lines
from deepmemory.stores._base import SQLStore

NS = ("memories", "alice")
TEXTS = [
    "",
    "one",
    "one\n",
    "one\n\n",
    "\n",
    "\n\n\n",
    "a\r\nb\r\n",
    "a\rb\n\rc",
    "é🙂\n中文\n\u2028x\n",
    "".join(f"line {i}\n" for i in range(50)),
    "no newline at the end\nlast",
]
WINDOWS = [(0, 1), (0, 2000), (1, 2), (3, 10), (49, 5)]


@pytest.mark.parametrize("split_in_sql", [False, True])
def test_windows_match_python_splitting(
    store: SQLStore, split_in_sql: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if split_in_sql:
        monkeypatch.setattr(_lines, "WHOLE_BELOW", 0)  # every file is "large"
    for i, text in enumerate(TEXTS):
        key = f"/t{i}.txt"
        store.file_put(NS, key, StoredFile(text), expected_version=None)
        lines = split_lines(text)
        for offset, limit in WINDOWS:
            window = store.file_read_lines(NS, key, offset, limit)
            assert window is not None
            assert (window.lines, window.total_lines, window.size, window.binary) == (
                lines[offset : offset + limit],
                len(lines),
                len(text.encode()),
                False,
            ), (text, offset, limit)


def test_missing_and_binary_files(make_store: Callable[[str], SQLStore], store_kind: str) -> None:
    store = make_store(store_kind)
    assert store.file_read_lines(NS, "/nope", 0, 10) is None
    store.file_put(NS, "/b", StoredFile("AAEC", "base64"), expected_version=None)
    window = store.file_read_lines(NS, "/b", 0, 10)
    assert window is not None and window.binary and window.size == 3 and window.lines == []


@pytest.mark.parametrize("split_in_sql", [False, True])
def test_huge_windows_are_clamped_not_an_error(
    store: SQLStore, split_in_sql: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model asking for "everything" (limit 2**31 or more) gets the file, not a crash."""
    if split_in_sql:
        monkeypatch.setattr(_lines, "WHOLE_BELOW", 0)
    store.file_put(NS, "/t.txt", StoredFile("a\nb\n"), expected_version=None)
    for offset, limit in [(0, 2**31), (0, 10**12), (1, 2**31 - 1), (2**31, 10), (10**12, 1)]:
        window = store.file_read_lines(NS, "/t.txt", offset, limit)
        assert window is not None and window.total_lines == 2
        assert window.lines == ["a", "b"][offset : offset + limit]
