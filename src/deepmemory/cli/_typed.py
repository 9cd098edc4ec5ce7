"""Text arguments taken as typed, even when they start with '-'.

Memory content is often markdown: ``deepmemory memory write p.txt "- Concise answers"``.
Click reads any argument starting with '-' as a bundle of short options, so a bullet
holding an ``h`` printed the help instead of writing ("- show the schema"), one holding
a ``u`` took the rest as ``--user``, others failed with "No such option". A command
built with ``AsTyped`` treats as options only the tokens that are exactly one of its
option names (or ``--name=value``, a one-letter option with its value attached such as
``-g*.md`` or ``-n5``, or a bundle of its one-letter flags such as ``-lc``), with the
value after an option that takes one; every other token is text, in order. Text with a
space is never an option. ``--`` still ends the options, so ``-- --help``
writes the text ``--help``.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand


class AsTyped(TyperCommand):
    """A command whose arguments are options only when they name one of its options."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            typed = as_typed(self.get_params(ctx), args)
        except MissingValue as missing:
            ctx.fail(f"Option '{missing}' requires an argument.")
        return super().parse_args(ctx, typed)


class MissingValue(ValueError):
    """An option that takes a value came last, without one."""


def as_typed(params: list[Any], args: list[str]) -> list[str]:
    """``args`` reordered as options first, then ``--``, then every text argument."""
    takes_value: dict[str, bool] = {}
    for param in params:
        if param.param_type_name == "option":  # typer's own click: no isinstance
            for name in (*param.opts, *param.secondary_opts):
                takes_value[name] = not (param.is_flag or getattr(param, "count", False))
    options: list[str] = []
    texts: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            texts.extend(tokens)
            break
        name, equals, _ = token.partition("=")
        if (
            token in takes_value
            or (equals and name.startswith("--") and takes_value.get(name))
            or _flag_bundle(token, takes_value)
            or _attached_value(token, takes_value)
        ):
            options.append(token)
            if takes_value.get(token):
                value = next(tokens, None)
                if value is None:
                    raise MissingValue(token)
                options.append(value)
            continue
        texts.append(token)
    return [*options, "--", *texts]


def _flag_bundle(token: str, takes_value: dict[str, bool]) -> bool:
    """Whether ``token`` is several one-letter flags written together (``-lc``)."""
    letters = token[1:]
    return (
        len(token) > 2
        and token[0] == "-"
        and letters.isalnum()
        and all(takes_value.get("-" + letter) is False for letter in letters)
    )


def _attached_value(token: str, takes_value: dict[str, bool]) -> bool:
    """Whether ``token`` is a one-letter option with its value attached (``-n5``)."""
    return (
        len(token) > 2
        and takes_value.get(token[:2]) is True
        and not token.startswith("--")
        and not any(c.isspace() for c in token)
    )
