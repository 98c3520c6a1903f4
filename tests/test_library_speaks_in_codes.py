"""The library never tells anyone to run a command: no string in it names a CLI flag or a
``vidauth <command>``.

Only the command line's own modules (``cli*.py``, ``doctor.py``, ``demo.py``, ``_serving.py``
and the ``sandbox`` package) may speak of flags and commands; everywhere else an error states
facts with a code and :mod:`vidauth.cli.errors` adds the way out. The scan reads each module's
syntax tree, so it sees every string constant and every literal part of an f-string, wherever
it is used (a message, a default, a dictionary).

Docstrings are skipped, and only docstrings: they document the module for its readers (who
may well run ``vidauth uploads``), they are never shown to a user of the library or the service.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import vidauth

PACKAGE = Path(vidauth.__file__).parent
CLI_FILES = {"_serving.py"}
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _commands() -> list[str]:
    """The CLI's top-level command names (``login``, ``upload``, ``uploads`` …)."""
    import typer.main

    from vidauth.cli.app import app

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


COMMAND = re.compile(rf"\bvidauth ({'|'.join(_commands())})\b")


def _library_modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("sandbox", "cli"):
            continue
        if len(relative.parts) == 1 and path.name in CLI_FILES:
            continue
        yield path


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the nodes that are docstrings (of the module, a class or a function)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
        ):
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def _strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every string literal in ``tree`` (f-string parts included) that is not a docstring."""
    skip = _docstrings(tree)
    found = [
        (node.lineno, node.col_offset, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]
    for line, _, text in sorted(found):
        yield line, text


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(PACKAGE.parent)
    return [
        f"{where}:{line}: {text!r}"
        for line, text in _strings(tree)
        if FLAG.search(text) or COMMAND.search(text)
    ]


def test_the_scan_sees_messages_and_fstring_parts_but_not_docstrings() -> None:
    tree = ast.parse(
        '"""Run `vidauth login --device`."""\n'
        "def f(n):\n"
        '    """See --help."""\n'
        '    raise ValueError(f"{n}: pass --force")\n'
        'HINT = "run vidauth login"\n'
    )
    texts = [text for _, text in _strings(tree)]
    assert texts == [": pass --force", "run vidauth login"]


def test_no_library_string_names_a_flag_or_a_command() -> None:
    modules = list(_library_modules())
    assert "login" in _commands()
    assert any(p.name == "files.py" for p in modules) and not any(
        p.relative_to(PACKAGE).parts[0] == "cli" for p in modules
    )
    offences = [line for path in modules for line in _offences(path)]
    assert not offences, "CLI flags or commands in library strings:\n" + "\n".join(offences)
