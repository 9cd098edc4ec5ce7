"""``deepmemory demo``: the cross-thread memory walkthrough, run for real on SQLite.

The command only parses its options; the walkthrough (``_walkthrough``) loads the
agent stack when it runs, so that the rest of the command line starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deepmemory.cli._terminal import reports_errors


@reports_errors
def demo(
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Use a real model (DEEPMEMORY_MODEL, or the provider of the API key set) "
            "instead of the scripted one.",
        ),
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file for memory and threads (default: a new temporary one).",
            envvar="DEEPMEMORY_DB",
        ),
    ] = None,
) -> None:
    """Run the cross-thread memory walkthrough offline and show what happens.

    Example:
        deepmemory demo --db ./memory.db
    """
    from deepmemory.cli import _walkthrough

    _walkthrough.run(live, db)
