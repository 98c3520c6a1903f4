"""``--help`` at 80 columns reads like a tool's: no Python type names, flags without a value
placeholder, arguments by name, and command summaries that break only where a line is full."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 80


def _help(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env.update(COLUMNS=str(WIDTH), PYTHONPATH=str(ROOT / "src"), NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "vidauth", *args, "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _assert_plain(text: str) -> None:
    assert "<bool>" not in text
    assert not re.search(r"<[a-z][\w\[\], |]*>", text), "a <type> placeholder is shown"
    assert "list[" not in text and "{" not in text, "a Python type or {name} is shown"
    assert max(len(line) for line in text.splitlines()) <= WIDTH


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # the top level: global flags and value options
        ((), [r"--verbose\s+-v\s+Log progress", r"--env-file\s+PATH", r"--profile\s+TEXT"]),
        # a command whose argument takes several values, plus --wait/--no-wait and numbers
        (("upload",), [r"Usage: vidauth upload \[OPTIONS\] FILE\.\.\.", r"\* +FILE\.\.\. +Video"]),
        # a repeatable option
        (("sandbox",), [r"--redirect-uri\s+TEXT\s+Redirect URI"]),
        # a sub-command with one argument
        (("uploads", "cancel"), [r"Usage: vidauth uploads cancel \[OPTIONS\] UPLOAD_ID"]),
        # a group with its own options
        (("uploads",), [r"--json\s+Machine-readable"]),
    ],
)
def test_help_shows_no_type_names(args: tuple[str, ...], expected: list[str]) -> None:
    text = _help(*args)
    _assert_plain(text)
    for pattern in expected:
        assert re.search(pattern, text), f"{pattern!r} not in:\n{text}"
    flag = re.search(r"--help\s+(\S+)", text)
    assert flag and flag.group(1) == "Show", "--help shows a value placeholder"


def test_command_summaries_break_only_where_the_line_is_full() -> None:
    text = _help()
    _assert_plain(text)
    panel = text[text.index("Commands") :].splitlines()[1:]
    rows = [line.strip("│ ").rstrip() for line in panel if line.startswith("│")]
    raw = [line for line in panel if line.startswith("│")]
    name_width = max(len(line.split()[1]) for line in raw if not line[2:4].isspace())
    for index, line in enumerate(raw[:-1]):
        following = raw[index + 1]
        if not following[2 : 2 + name_width].isspace():
            continue  # the next line is the next command
        next_word = following.strip("│ ").split()[0]
        used = len(line.rstrip("│ ").rstrip())
        assert used + 1 + len(next_word) > WIDTH - 2, f"a summary broke early:\n{line}\n{following}"
    assert any(row.startswith("doctor") for row in rows)


def test_every_number_range_in_the_help_is_escaped_as_rich_escapes_it() -> None:
    """The ranges (``[x>=1]``, ``[1<=x<=64]``) go into the help, which is Rich markup, without
    importing Rich for its escape function: the text must be what that function writes."""
    from rich.markup import escape, render
    from typer.core import TyperOption

    from vidauth.cli.app import command

    seen = set()
    stack = [command()]
    while stack:
        current = stack.pop()
        stack.extend(getattr(current, "commands", {}).values())
        for param in current.params:
            if not isinstance(param, TyperOption):
                continue
            text = TyperOption._get_number_range_help_str(param)
            if text:
                assert param.help.endswith(" " + escape(f"[{text}]")), (param.name, param.help)
                assert render(param.help).plain.endswith(f"[{text}]")
                seen.add(text[:1].isdigit())
    assert seen == {True, False}  # both kinds: escaped ("x>=1") and left alone ("1<=x<=64")
