"""Passages of a text file, for recall by meaning: sections or paragraphs, bounded in size.

A file is cut at blank lines and before Markdown headings into paragraphs; paragraphs
are joined while the passage stays within ``MAX_LINES`` lines and ``MAX_CHARS``
characters (a heading starts a new passage), and a paragraph longer than that is cut
into pieces of that size. Each passage keeps its 1-based line range, numbered as
``read_file`` numbers lines (``split_lines``), so a result points the model at
``read_file(offset=start_line - 1)``. Blank lines belong to no passage. The same text
always gives the same passages, so an edit changes only the passages around it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from deepmemory.backends._text import split_lines

MAX_LINES = 20
MAX_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage: its first and last line (1-based, inclusive) and its text."""

    start_line: int
    end_line: int
    text: str

    @property
    def digest(self) -> str:
        """A fingerprint of the text: equal texts share their embedding."""
        return hashlib.blake2b(
            self.text.encode("utf-8", "surrogatepass"), digest_size=16
        ).hexdigest()


def _paragraphs(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines, as (index of the first line, lines); a heading starts one."""
    found: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for i, line in enumerate(lines):
        if not line.strip():
            if current:
                found.append((start, current))
            current = []
            continue
        if line.startswith("#") and current:
            found.append((start, current))
            current = []
        if not current:
            start = i
        current.append(line)
    if current:
        found.append((start, current))
    return found


def _pieces(start: int, lines: list[str]) -> list[tuple[int, list[str]]]:
    """A paragraph cut into pieces within the bounds (a very long line is its own piece)."""
    out: list[tuple[int, list[str]]] = []
    piece: list[str] = []
    size = 0
    for offset, line in enumerate(lines):
        if piece and (len(piece) >= MAX_LINES or size + len(line) + 1 > MAX_CHARS):
            out.append((start + offset - len(piece), piece))
            piece, size = [], 0
        piece.append(line)
        size += len(line) + 1
    if piece:
        out.append((start + len(lines) - len(piece), piece))
    return out


def chunk_text(content: str) -> list[Chunk]:
    r"""The passages of ``content``, in order.

    Example:
        >>> [(c.start_line, c.end_line) for c in chunk_text("# A\nx\n\ny\n# B\nz\n")]
        [(1, 4), (5, 6)]
    """
    all_lines = split_lines(content)
    spans: list[tuple[int, int]] = []  # (first, last) line indexes of each passage
    count = size = 0
    for start, paragraph in _paragraphs(all_lines):
        for piece_start, piece in _pieces(start, paragraph):
            piece_size = sum(len(line) + 1 for line in piece)
            fits = count + len(piece) <= MAX_LINES and size + piece_size <= MAX_CHARS
            if spans and count and (piece[0].startswith("#") or not fits):
                count = size = 0
            if count == 0:
                spans.append((piece_start, piece_start))
            spans[-1] = (spans[-1][0], piece_start + len(piece) - 1)
            count += len(piece)
            size += piece_size
    return [Chunk(a + 1, b + 1, "\n".join(all_lines[a : b + 1])) for a, b in spans]
