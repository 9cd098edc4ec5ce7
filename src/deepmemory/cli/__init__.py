"""The ``deepmemory`` command: chat with an agent that remembers, and manage its memory.

One module per command group: ``chat`` (``chat``, ``run``), ``memory``, ``threads``,
``demo`` and ``mcp``; settings in ``_config``, the database in ``_store``, terminal
conventions (colour on a TTY only, one-line errors, exit codes) in ``_terminal``.

Example:
    $ deepmemory chat
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from deepmemory.cli._typed import AsTyped
from deepmemory.cli.chat import chat, run
from deepmemory.cli.demo import demo
from deepmemory.cli.mcp import mcp
from deepmemory.cli.memory import memory_app
from deepmemory.cli.threads import threads_app

app = typer.Typer(
    name="deepmemory",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # never print locals (API keys) in a traceback
)
app.command()(chat)
app.command(cls=AsTyped)(run)
app.add_typer(memory_app)
app.add_typer(threads_app)
app.command()(demo)
app.command()(mcp)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"deepmemory {version('deepmemory')}")
        raise typer.Exit()


@app.callback()
def _root(
    _: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Long-term memory for LLM agents: chat with an agent that remembers, manage its memory.

    Settings come from options, their environment variables (DEEPMEMORY_MODEL,
    DEEPMEMORY_DB, DEEPMEMORY_USER, ...) or ~/.config/deepmemory/config.toml.
    Run `deepmemory COMMAND -h` for each command.

    Example:
        deepmemory chat --model openai:gpt-4.1
    """


def main() -> None:
    """Entry point of the ``deepmemory`` console script."""
    try:
        code = app(standalone_mode=False)
    except typer.exceptions.TyperException as exc:  # usage errors: one line, not a box
        from deepmemory.cli._terminal import report

        ctx = getattr(exc, "ctx", None)
        hint = f" See `{ctx.command_path} -h`." if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        report(f"{message.rstrip('.')}.{hint}")
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        sys.exit(1)
    except KeyboardInterrupt:  # outside any command (typer's own parsing, start-up)
        from deepmemory.cli._terminal import interrupted

        try:
            interrupted()
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
