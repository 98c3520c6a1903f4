"""The command line's imports run one way: ``vidauth.cli.app`` wires the command modules, and
no module of the package imports it back (nor loads another with importlib)."""

from __future__ import annotations

import ast
from pathlib import Path

import vidauth.cli

PACKAGE = Path(vidauth.cli.__file__).parent


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_command_module_imports_the_root_app() -> None:
    below = [p for p in sorted(PACKAGE.glob("*.py")) if p.name not in ("app.py", "__init__.py")]
    assert {p.name for p in below} >= {"auth.py", "upload.py", "common.py", "options.py"}
    upward = {p.name: sorted(_imported(p) & {"vidauth.cli.app", "vidauth.cli"}) for p in below}
    assert not {name: found for name, found in upward.items() if found}


def test_the_command_line_loads_no_module_by_name() -> None:
    by_name = {"importlib", "importlib.import_module", "builtins.__import__"}
    users = [p.name for p in sorted(PACKAGE.glob("*.py")) if _imported(p) & by_name]
    assert users == []
