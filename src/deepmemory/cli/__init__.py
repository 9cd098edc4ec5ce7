"""The ``deepmemory`` command.

Example:
    $ deepmemory demo
"""

from __future__ import annotations

import typer

from deepmemory.cli.demo import demo

app = typer.Typer(
    name="deepmemory",
    help="Long-term memory for LLM agents.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
)
app.command()(demo)


@app.callback()
def _root() -> None:
    """Long-term memory for LLM agents: run `deepmemory COMMAND -h` for each command."""


def main() -> None:
    """Entry point of the ``deepmemory`` console script."""
    app()
