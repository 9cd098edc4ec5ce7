"""Pure helpers shared by every backend: lines, sizes, timestamps, byte round trips."""

from __future__ import annotations

import base64
import binascii

from deepmemory.backends.protocol import Encoding, StoredFile
from deepmemory.clock import now_iso

__all__ = ["now_iso"]  # re-exported: the file timestamps come from deepmemory.clock


def human_size(n: int | None) -> str:
    """``1536`` -> ``"1.5 KB"``; '' for an unknown size."""
    if n is None:
        return ""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def split_lines(content: str) -> list[str]:
    r"""Split text into lines the way read and grep number them.

    Only ``\n`` ends a line (a trailing ``\r`` is dropped from what is shown, so CRLF
    files read cleanly); a final newline does not start an extra empty line.
    """
    if content == "":
        return []
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" not in content:
        return lines
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def text_size(content: str) -> int:
    """Size in UTF-8 bytes (surrogates counted as replaced, never raising)."""
    return len(content.encode("utf-8", "surrogatepass"))


def is_valid_text(content: str) -> bool:
    """Whether ``content`` can be stored as text: UTF-8, and no NUL (binary goes by upload)."""
    if "\x00" in content:
        return False
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_from_bytes(data: bytes, *, created_at: str, modified_at: str) -> StoredFile:
    """Store text as text and anything else as base64, so both round-trip byte-exact.

    Text is UTF-8 without NUL (``is_valid_text``): bytes holding a NUL are binary on
    every backend, as databases cannot keep NUL in text.
    """
    if b"\x00" not in data:
        try:
            return StoredFile(data.decode("utf-8"), "utf-8", created_at, modified_at)
        except UnicodeDecodeError:
            pass
    encoded = base64.b64encode(data).decode("ascii")
    return StoredFile(encoded, "base64", created_at, modified_at)


def file_to_bytes(file: StoredFile) -> bytes:
    """The exact bytes of a stored file."""
    if file.encoding == "base64":
        return base64.b64decode(file.content)
    return file.content.encode("utf-8")


def stored_size(file: StoredFile) -> int:
    """Size in bytes of a stored file's real content."""
    if file.encoding == "base64":
        try:
            return len(base64.b64decode(file.content))
        except (binascii.Error, ValueError):
            return len(file.content)
    return text_size(file.content)


def file_from_value(value: dict[str, object]) -> StoredFile:
    """Read an item value, including the older layout whose content is a list of lines."""
    content = value.get("content", "")
    if isinstance(content, list):
        content = "\n".join(str(line) for line in content)
    encoding: Encoding = "base64" if value.get("encoding") == "base64" else "utf-8"
    return StoredFile(
        content=str(content),
        encoding=encoding,
        created_at=str(value.get("created_at", "")),
        modified_at=str(value.get("modified_at", "")),
    )


def count_and_replace(
    content: str, old_string: str, new_string: str, replace_all: bool
) -> tuple[int, str]:
    """How often ``old_string`` occurs, and the text after the replacement that edit makes.

    The text is only replaced when the count is 1, or when ``replace_all`` and >= 1.
    """
    count = content.count(old_string)
    if count == 0 or (count > 1 and not replace_all):
        return count, content
    return count, content.replace(old_string, new_string)
