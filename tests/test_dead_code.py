"""No dead code: vulture finds no unused name in src/vidauth or src/vidauth_sandbox that is not
listed, with the reason it is used, in tests/dead_code_whitelist.py (framework hooks, database
columns, public API).

Code used only by tests counts as used (the tests are scanned too); the migrations' module-level
names are read by Alembic and are not scanned."""

from __future__ import annotations

from pathlib import Path

import vulture

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "vidauth"
SANDBOX = ROOT / "src" / "vidauth_sandbox"


def test_vulture_finds_no_unused_code_in_the_package() -> None:
    finder = vulture.Vulture()
    finder.scavenge(
        [str(SRC), str(SANDBOX), str(ROOT / "tests")],
        exclude=[
            str(SRC / "store" / "migrations" / "versions"),
            str(SRC / "service" / "migrations" / "versions"),
            str(ROOT / "tests" / "thirdparty" / "oidc_provider"),
        ],
    )
    unused = [
        f"{item.filename.relative_to(ROOT)}:{item.first_lineno}: {item.message}"
        for item in finder.get_unused_code(min_confidence=60)
        if SRC in item.filename.parents or SANDBOX in item.filename.parents
    ]
    assert not unused, "unused code (delete it, or list it with its reason):\n" + "\n".join(unused)
