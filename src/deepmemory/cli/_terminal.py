"""Terminal conventions: colour only on a TTY, one-line errors, meaningful exit codes.

Exit codes: 0 success; 1 the operation failed (a file not found, a server that cannot
be reached or refuses the request); 2 a usage or configuration error (a bad option, no
model configured, a missing API key); 130 interrupted with Ctrl-C.

Every command is wrapped in :func:`reports_errors`, so an exception reaches the person
as one line on stderr (``error: ...``) and an exit code, never as a traceback. Set
``DEEPMEMORY_DEBUG=1`` to get the traceback of an unexpected error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from deepmemory.errors import ConfigError, DeepMemoryError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

P = ParamSpec("P")
R = TypeVar("R")


class CommandError(Exception):
    """An error a command reports itself: its message and exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Stop the command with one line on stderr and exit code ``code``."""
    raise CommandError(message, code)


def colour() -> bool | None:
    """``typer.echo``'s ``color``: off under ``NO_COLOR``, else only on a terminal (None)."""
    return False if os.environ.get("NO_COLOR") else None


def styled(message: str, *, err: bool = False) -> None:
    """Print a line that may hold ``typer.style`` colours, honouring the conventions."""
    typer.echo(message, err=err, color=colour())


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout or stderr: colour only when it is a terminal."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def is_tty(stream: object) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def one_line(text: object) -> str:
    """``text`` with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


def plural(count: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def report(message: str) -> None:
    """Print ``error: message`` on stderr (red on a terminal)."""
    styled(typer.style("error:", fg="red", bold=True) + " " + one_line(message), err=True)


def note(message: str) -> None:
    """Print a dim status line on stderr (progress, the thread id of a new conversation)."""
    styled(typer.style(message, dim=True), err=True)


_AFTER: list[str] = []


def note_if_done(message: str) -> None:
    """``note`` once the command has succeeded (an error stays the only line)."""
    _AFTER.append(message)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout, for programs."""
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _model_detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        detail = str(body["message"])  # the provider's own words, not "Error code: 401 - {...}"
    else:
        detail = str(exc)
    return one_line(detail).rstrip(".")


def _describe_model_error(exc: BaseException) -> tuple[str, int] | None:
    from langchain_core.exceptions import (
        ModelAuthenticationError,
        ModelConnectionError,
        ModelError,
        ModelNotFoundError,
        ModelTimeoutError,
    )

    if isinstance(exc, ModelAuthenticationError):
        return (
            f"The model server rejected the API key ({_model_detail(exc)}). Set a valid key "
            "(OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) for the provider of --model.",
            EXIT_FAILED,
        )
    if isinstance(exc, ModelConnectionError | ModelTimeoutError):
        return (
            f"Cannot reach the model server ({_model_detail(exc)}). Check that it is running and that "
            "--base-url / DEEPMEMORY_BASE_URL / OPENAI_BASE_URL point at it.",
            EXIT_FAILED,
        )
    if isinstance(exc, ModelNotFoundError):
        return (
            f"The model server does not know this model ({_model_detail(exc)}). "
            "Choose another with --model or DEEPMEMORY_MODEL.",
            EXIT_FAILED,
        )
    if isinstance(exc, ModelError):
        return f"The model request failed: {_model_detail(exc)}", EXIT_FAILED
    return None


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an exception."""
    if isinstance(exc, CommandError):
        return str(exc), exc.code
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_USAGE
    if "langchain_core" in sys.modules:  # a model's error needs a model, loaded by then
        model_error = _describe_model_error(exc)
        if model_error is not None:
            return model_error
    psycopg = sys.modules.get("psycopg")  # imported by then if PostgreSQL was used
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return f"Cannot use the PostgreSQL database given by --db: {exc}", EXIT_FAILED
    if isinstance(exc, sqlite3.Error):
        return f"SQLite database error: {exc}. Check --db / DEEPMEMORY_DB.", EXIT_FAILED
    if isinstance(exc, DeepMemoryError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}", EXIT_FAILED
    return f"Unexpected {type(exc).__name__}: {exc} (DEEPMEMORY_DEBUG=1 shows where)", EXIT_FAILED


def interrupted() -> NoReturn:
    """Ctrl-C: say so and exit 130, and let no second Ctrl-C cut the cleanup short.

    A KeyboardInterrupt raised while the store closes or the interpreter exits would
    end the process by the signal instead, with neither the message nor the code.
    """
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    typer.echo("", err=True)
    note("Interrupted.")
    raise typer.Exit(EXIT_INTERRUPTED) from None


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command so that any error becomes one line on stderr and an exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        _AFTER.clear()
        try:
            done = command(*args, **kwargs)
            for message in _AFTER:
                note(message)
            return done
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise  # typer's own exits and usage errors
        except (KeyboardInterrupt, asyncio.CancelledError):
            interrupted()
        except Exception as exc:
            if os.environ.get("DEEPMEMORY_DEBUG") and not isinstance(exc, CommandError):
                raise
            message, code = describe(exc)
            report(message)
            raise typer.Exit(code) from None
        finally:
            _AFTER.clear()
            sys.stdout.flush()

    return run
