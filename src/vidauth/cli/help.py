"""``--help`` that reads like a command-line tool's, not like Python's type hints.

Typer shows every parameter's Python type: ``--verbose <bool>`` for a flag that takes no value,
``{files}... <list[Path]>`` for arguments, ``<list[str]>`` for a repeatable option, and a
command's summary keeps the line breaks of its docstring. :func:`tidy_help` walks the built
command tree once and gives each parameter a conventional metavar instead: nothing for flags,
``TEXT``/``INTEGER``/``NUMBER``/``PATH`` for values, ``FILE...`` for arguments.
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperArgument, TyperOption

_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "NUMBER",
    "float range": "NUMBER",
    "path": "PATH",
    "file": "PATH",
    "directory": "DIR",
    "bool": "",
}
#: Arguments named after what one of them is (the usage line adds "..." for several).
_ARGUMENT_NAMES = {"files": "FILE"}


class _Argument(TyperArgument):
    """A positional argument shown by its metavar: ``FILE...`` (required), ``[NAME]``
    (optional)."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw  # its metavar, "..." included when it takes several
        return name if self.required else f"[{name}]"

    def _rich_display_name(self) -> str:
        return self._usage_display_name()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name says what it is


class _Option(TyperOption):
    """An option whose number range is said in its help (``[x>=1]``), not beside its type: in
    that narrow column it pushed long option names to be cut at 80 columns."""

    def _get_number_range_help_str(self) -> str:
        return ""


def _range_into_help(param: Any) -> None:
    text = TyperOption._get_number_range_help_str(param)
    if text:
        # The help is Rich markup, where "[x>=1]" would read as a tag (a "[" then a letter, "#",
        # "/" or "@"): a backslash before it keeps it as text. rich.markup.escape does the same,
        # but importing Rich for it would cost every command's start 10 ms.
        first = text[:1]
        escaped = "\\[" if first.isascii() and (first.islower() or first in "#/@") else "["
        param.help = f"{param.help or ''} {escaped}{text}]".strip()
    param.__class__ = _Option


def _value_name(param: Any, ctx: Any) -> str:
    label = str(param.display_type(ctx)).strip("<>")
    inner = re.fullmatch(r"list\[(.*)\]", label)
    if inner:
        label = inner.group(1)
    if "|" in label:  # choices: show them
        return label
    return _NAMES.get(label.lower(), label.upper())


def _tidy_params(command: Any, ctx: Any) -> None:
    params = list(command.params)
    help_option = command.get_help_option(ctx)
    if help_option is not None:
        params.append(help_option)
    for param in params:
        if isinstance(param, TyperOption):
            if param.is_flag or param.count:
                param.metavar = ""
            elif param.metavar is None:
                param.metavar = _value_name(param, ctx)
            if type(param) is TyperOption:
                _range_into_help(param)
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                name = param.name or "value"
                metavar = _ARGUMENT_NAMES.get(name, name.upper())
                param.metavar = f"{metavar}..." if param.nargs != 1 else metavar
            param.__class__ = _Argument


def _one_line_summary(command: Any) -> None:
    """The command list shows the first paragraph of the docstring: on one line."""
    if command.short_help is None and command.help:
        first = command.help.strip().split("\n\n", 1)[0]
        command.short_help = " ".join(first.split())


def _reflowed(text: str) -> str:
    """``text`` with each prose paragraph on one line, for the terminal to wrap: Rich keeps a
    docstring's line breaks, which at 80 columns leaves a word alone on a line. Paragraphs
    with indented or bulleted lines keep their breaks."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines = paragraph.splitlines()
        if any(line[:1].isspace() or line.lstrip().startswith(("-", "*", "•")) for line in lines):
            paragraphs.append(paragraph)
        else:
            paragraphs.append(" ".join(paragraph.split()))
    return "\n\n".join(paragraphs)


def tidy_help(command: Any) -> Any:
    """Give every command in ``command``'s tree plain metavars and one-line summaries."""
    from typer._click import Context  # Typer vendors click

    stack = [command]
    while stack:
        current = stack.pop()
        _tidy_params(current, Context(current))
        _one_line_summary(current)
        if current.help:
            current.help = _reflowed(current.help)
        stack.extend(getattr(current, "commands", {}).values())
    return command
