"""The structure holds: import-linter's contracts (pyproject.toml, ``[tool.importlinter]``).

They say that a module imports only from the layers below its own, that the product never
imports its sandbox (only the CLI starts it), that the sandbox shares no protocol code with the
client it tests, that the CLI's command modules never import its root app, that the service's
app and routes never import its worker, and that no two modules or packages import each other,
directly or round a circle.
"""

from __future__ import annotations

from pathlib import Path

from importlinter.application.use_cases import lint_imports
from importlinter.configuration import configure

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    configure()  # what the lint-imports command does first: readers, printer, graph builder
    assert lint_imports(
        config_filename=str(ROOT / "pyproject.toml"), cache_dir=None, no_logo=True
    ), "an import breaks a contract: see the report above"
