"""The checks every backend makes of a call's arguments before any I/O, written once.

Each returns the path to report (normalised when it is valid, else as given) and the
model-facing message of the first problem, or ``None``: backends over our repositories
(``_files``) and over other harnesses' backends (``integrations``) refuse the same
calls with the same words.
"""

from __future__ import annotations

from deepmemory import errors, paths
from deepmemory.backends._base import move_problem
from deepmemory.backends._text import is_valid_text

Checked = tuple[str, str | None]


def read_args(file_path: object, offset: object, limit: object) -> Checked:
    """A read: a file path, an offset of 0 or more, a limit of 1 or more."""
    try:
        vpath = paths.validate_file(file_path)
    except errors.InvalidPathError as exc:
        return str(file_path), str(exc)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return vpath, errors.bad_offset(offset)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return vpath, errors.bad_limit(limit)
    return vpath, None


def write_args(file_path: object, content: object) -> Checked:
    """A write: a file path and text that can be stored as UTF-8."""
    try:
        vpath = paths.validate_file(file_path)
    except errors.InvalidPathError as exc:
        return str(file_path), str(exc)
    if not isinstance(content, str):
        return vpath, "Error: content must be text."
    if not is_valid_text(content):
        return vpath, errors.invalid_text(vpath)
    return vpath, None


def edit_args(file_path: object, old_string: object, new_string: object) -> Checked:
    """An edit: a file path, a non-empty old string and a storable new one."""
    try:
        vpath = paths.validate_file(file_path)
    except errors.InvalidPathError as exc:
        return str(file_path), str(exc)
    if not isinstance(old_string, str) or not isinstance(new_string, str):
        return vpath, "Error: old_string and new_string must be text."
    if old_string == "":
        return vpath, errors.empty_old_string(vpath)
    if not is_valid_text(new_string):
        return vpath, errors.invalid_text(vpath)
    return vpath, None


def move_args(mount: str, old_path: object, new_path: object) -> tuple[str, str, str | None]:
    """A move within a backend at ``mount``: two valid paths that can move as asked."""
    try:
        old, new = paths.validate(old_path), paths.validate(new_path)
    except errors.InvalidPathError as exc:
        return str(old_path), str(new_path), str(exc)
    return old, new, move_problem(mount, old, new)
