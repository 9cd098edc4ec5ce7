"""How every tool result reads: the text the model (and the command line) is shown.

Kept apart from the middleware so that the command line renders results as the agent
sees them without importing LangChain's agent stack.
"""

from __future__ import annotations

from deepmemory import errors
from deepmemory.backends._text import human_size
from deepmemory.backends.protocol import (
    DeleteResult,
    EditResult,
    FileInfo,
    GlobResult,
    GrepResult,
    LsResult,
    MoveResult,
    ReadResult,
    RecallResult,
    WriteResult,
)

MAX_LINE_CHARS = 2000
MAX_OUTPUT_CHARS = 60_000
MAX_LIST_ENTRIES = 1000


def _listing(entries: list[FileInfo], empty: str, more_hint: str) -> str:
    if not entries:
        return empty
    lines = []
    for e in entries[:MAX_LIST_ENTRIES]:
        lines.append(e.path if e.is_dir else f"{e.path} ({human_size(e.size)})")
    if len(entries) > MAX_LIST_ENTRIES:
        lines.append(f"... and {len(entries) - MAX_LIST_ENTRIES} more. {more_hint}")
    return _cap("\n".join(lines), more_hint)


def _cap(text: str, hint: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    cut = text.rfind("\n", 0, MAX_OUTPUT_CHARS)
    cut = cut if cut > 0 else MAX_OUTPUT_CHARS
    return text[:cut] + f"\n... [output truncated at {MAX_OUTPUT_CHARS} characters] {hint}"


def render_ls(result: LsResult) -> str:
    """Text for ``ls``."""
    if result.error:
        return result.error
    return _listing(
        result.entries,
        f"{result.path!r} is empty.",
        "Use glob with a narrower pattern or ls a subdirectory.",
    )


def render_read(result: ReadResult) -> str:
    """``cat -n`` style lines, with notes for truncated lines and remaining lines."""
    if result.error:
        return result.error
    if result.total_lines == 0:
        return f"{result.path!r} exists but is empty."
    out: list[str] = []
    used = 0
    shown_end = result.offset
    truncated_lines = False
    for number, line in enumerate(result.lines, start=result.offset + 1):
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f"... [line truncated: {len(line)} characters]"
            truncated_lines = True
        row = f"{number:6d}\t{line}"
        if out and used + len(row) + 1 > MAX_OUTPUT_CHARS:
            break
        out.append(row)
        used += len(row) + 1
        shown_end = number
    text = "\n".join(out)
    if shown_end < result.total_lines:
        text += (
            f"\n\n[Showing lines {result.offset + 1}-{shown_end} of {result.total_lines}. "
            f"Call read_file with offset={shown_end} to read on.]"
        )
    if truncated_lines:
        text += f"\n[Lines longer than {MAX_LINE_CHARS} characters were cut in this view only.]"
    return text


def render_write(result: WriteResult) -> str:
    """Text for ``write_file``."""
    return result.error or f"Wrote {result.path!r}."


def render_edit(result: EditResult) -> str:
    """Text for ``edit_file``."""
    if result.error:
        return result.error
    times = "1 occurrence" if result.occurrences == 1 else f"{result.occurrences} occurrences"
    return f"Edited {result.path!r}: replaced {times}."


def render_delete(result: DeleteResult) -> str:
    """Text for ``delete``."""
    if result.error:
        return result.error
    if result.deleted == [result.path]:
        return f"Deleted {result.path!r}."
    return f"Deleted {result.path!r} and {errors.count(len(result.deleted), 'file')} in it."


def render_move(result: MoveResult) -> str:
    """Text for ``move``."""
    if result.error:
        return result.error
    if [old for old, _ in result.moved] == [result.path]:
        return f"Moved {result.path!r} to {result.new_path!r}."
    moved = errors.count(len(result.moved), "file")
    return f"Moved {result.path!r} to {result.new_path!r} with {moved} in it."


RECALL_LINE_CHARS = 300


def render_recall(result: RecallResult) -> str:
    """Text for ``semantic_search``: each passage with its place, best first."""
    if result.error:
        return result.error
    out = []
    for p in result.passages:
        # A passage is a few lines (``_chunks`` bounds it); very long lines are cut here.
        shown = [
            line if len(line) <= RECALL_LINE_CHARS else line[:RECALL_LINE_CHARS] + "..."
            for line in p.text.split("\n")
        ]
        body = "\n".join("    " + line for line in shown)
        out.append(f"{p.path} lines {p.start_line}-{p.end_line} (score {p.score:.2f}):\n{body}")
    if out:
        first = result.passages[0]
        out.append(
            f"Read more with read_file, e.g. read_file({first.path!r}, "
            f"offset={first.start_line - 1})."
        )
    else:
        out.append(f"No passages found for {result.query!r}.")
    if result.unindexed:
        names = ", ".join(result.unindexed[:5]) + (" ..." if len(result.unindexed) > 5 else "")
        out.append(
            f"Results may be incomplete: {len(result.unindexed)} file(s) are not indexed "
            f"for search by meaning yet ({names}); grep still searches them."
        )
    return _cap("\n\n".join(out), "Pass a narrower path or a smaller limit.")


def render_glob(result: GlobResult) -> str:
    """Text for ``glob``."""
    if result.error:
        return result.error
    return _listing(
        result.files,
        f"No files match {result.pattern!r}.",
        "Use a narrower pattern or pass path= to search one directory.",
    )


def render_grep(result: GrepResult, mode: str) -> str:
    """Text for ``grep`` in one of its three output modes."""
    if result.error:
        return result.error
    if not result.matches:
        return f"No matches for {result.pattern!r}."
    hint = "Pass path= or glob= to narrow the search."
    if mode == "content":
        rows = [f"{m.path}:{m.line}: {m.text[:MAX_LINE_CHARS]}" for m in result.matches]
    else:
        counts: dict[str, int] = {}
        for m in result.matches:
            counts[m.path] = counts.get(m.path, 0) + 1
        if mode == "count":
            rows = [f"{path}: {n}" for path, n in counts.items()]
        else:
            rows = list(counts)
    if len(rows) > MAX_LIST_ENTRIES:
        rows = rows[:MAX_LIST_ENTRIES] + [f"... and {len(rows) - MAX_LIST_ENTRIES} more. {hint}"]
    if result.truncated:
        rows.append(
            f"[The search stopped at {len(result.matches):,} matching lines; there are more, "
            f"so counts are partial. {hint}]"
        )
    return _cap("\n".join(rows), hint)
