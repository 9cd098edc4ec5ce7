"""Text arguments taken as typed, even when they start with '-'.

Memory content is often markdown: ``deepmemory memory write p.txt "- Concise answers"``.
Click reads any argument starting with '-' as a bundle of short options, so a bullet
holding an ``h`` printed the help instead of writing ("- show the schema"), one holding
a ``u`` took the rest as ``--user``, others failed with "No such option". A command
built with ``AsTyped`` treats as options only the tokens that are exactly one of its
option names (or ``--name=value``, or a bundle of its one-letter flags such as ``-lc``),
with the value after an option that takes one; every other token is text, in order.
``--`` still ends the options, so ``-- --help`` writes the text ``--help``.

A value attached to a one-letter option (``-ualice``, ``-g*.md``) is text too: taken
as an option, ``-urgent`` would write to user "rgent". Where such a token lands on a
PATH argument (``grep hello -g*.md``), that is refused in one line saying how to write
it, rather than looking in a folder named ``-g*.md``.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand


class AsTyped(TyperCommand):
    """A command whose arguments are options only when they name one of its options."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        params = self.get_params(ctx)
        try:
            typed = as_typed(params, args)
        except MissingValue as missing:
            ctx.fail(f"Option '{missing}' requires an argument.")
        texts = typed[typed.index("--") + 1 :]
        arguments = [p for p in params if p.param_type_name == "argument"]
        for param, text in zip(arguments, texts, strict=False):
            if param.name in PATH_ARGUMENTS and text.startswith("-") and text != "-":
                ctx.fail(
                    f"{text!r} is not a path: give an option and its value apart "
                    f"('{text[:2]} {text[2:]}'), a path starting with '-' as /memories/{text}."
                )
        return super().parse_args(ctx, typed)


PATH_ARGUMENTS = ("path",)  # the PATH arguments of the commands built with AsTyped


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
