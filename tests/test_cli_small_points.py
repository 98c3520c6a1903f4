"""Small things a newcomer meets: ``--version``, ``--help`` at 80 columns through a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import SETTING_NAMES

pytestmark = pytest.mark.slow  # starts processes or servers: not in the quick tier

BOX = re.compile(r"[│╭╮╰╯─]")


def _vidauth(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "vidauth", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        check=False,
    )


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    done = _vidauth("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"vidauth {version('vidauth')}\n"


@pytest.mark.parametrize("columns", [None, "80"])
@pytest.mark.parametrize("command", ["sandbox", "upload"])
def test_help_through_a_pipe_keeps_option_names_and_sentences_whole(
    command: str, columns: str | None
) -> None:
    from typer.main import get_command

    from vidauth.cli.app import app
    from vidauth.cli.help import tidy_help

    done = _vidauth(command, "--help", **({"COLUMNS": columns} if columns else {}))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80
    group = tidy_help(get_command(app))
    names = [o for p in group.commands[command].params for o in getattr(p, "opts", [])]
    for name in names:
        if name.startswith("--"):
            assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", text, re.M), (name, text)
    # the description: each paragraph fills its lines (no word left alone on one)
    head = text.split("╭", 1)[0]
    paragraphs: list[list[str]] = [[]]
    for line in head.splitlines():
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    for lines in paragraphs[1:]:  # after the usage line
        for line in lines[:-1]:
            assert len(line) > 50, (line, head)
