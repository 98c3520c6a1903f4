"""vidauth.cli.tables: whole values stay whole at any width, in a table, below it, or in blocks."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from vidauth.cli.tables import Column, print_listing

URL = "http://127.0.0.1:44639/Panopto/Pages/Viewer.aspx?id=dc895848-cffd-4b81-a8c3-ff0c2b053e96"
GUID = "4b7d68ce-3d73-4441-83da-920d9432b96e"
PROSE = "check the profile's issuer and that it publishes /.well-known/openid-configuration"


def _render(width: int) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, soft_wrap=True, color_system=None)
    print_listing(
        console,
        "title",
        [
            Column("id", heading=True),
            Column("upload id"),
            Column("note", whole=False),
            Column("viewer", below=True),
            Column("empty"),
        ],
        [["1", GUID, PROSE, URL, ""], ["2", GUID[::-1], "short", "", ""]],
    )
    return buffer.getvalue()


@pytest.mark.parametrize("width", [40, 80, 125, 200])
def test_whole_values_and_words_survive_every_width(width: int) -> None:
    text = _render(width)
    assert "…" not in text
    tokens = set(re.split(r"[\s│┃]+", text))
    for value in (GUID, GUID[::-1], URL, *PROSE.split()):
        assert value in tokens, f"{value!r} cut at {width} columns:\n{text}"
    assert "empty" not in text  # a column with nothing in it is left out


def test_layouts_by_width() -> None:
    assert "┃ viewer" in _render(200)  # everything fits: one table
    below = _render(125)  # the URL goes under the table
    assert "┃ upload id" in below and "┃ viewer" not in below and "viewer:" in below
    narrow = _render(80)  # blocks of name/value lines
    assert "┃" not in narrow and re.search(r"^    upload id\s+" + GUID, narrow, re.M)


def test_values_are_never_read_as_markup() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, color_system=None)
    print_listing(
        console, "in [b]x[/b]", [Column("name"), Column("id")], [["[bold]SIT[/] Labs", "[x]"]]
    )
    assert "in [b]x[/b]" in buffer.getvalue()
    assert "[bold]SIT[/] Labs" in buffer.getvalue() and "[x]" in buffer.getvalue()
