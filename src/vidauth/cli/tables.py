"""Listings on the terminal that never cut what people copy.

Every listing (``profiles``, ``doctor``, ``status``, ``uploads``, ``folders``, ``sessions``) goes
through :func:`print_listing`. A column is either *whole* — ids, URLs, server names, variable
names: shown in full on one line, never wrapped or shortened — or *prose*, which may wrap at
spaces (never inside a word, so a URL in a sentence stays whole too). When the terminal is too
narrow for a table that keeps that promise, each record is printed as a block of ``name value``
lines instead, one value per line, which the terminal may soft-wrap but nothing cuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | Text


@dataclass(frozen=True)
class Column:
    """One column: its header, whether its values must stay whole, and whether it names the
    record (the heading line of the narrow layout); a long one may go below the table."""

    header: str
    whole: bool = True
    heading: bool = False
    #: When the table is too narrow with it, list this (long) value below the table instead.
    below: bool = False


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[Text]], room: int) -> list[int]:
    """Column widths that keep every whole value on one line and every word unbroken, using
    ``room`` cells in all; an empty list when that cannot be done."""
    minimum: list[int] = []
    wanted: list[int] = []
    for index, column in enumerate(columns):
        cells = [row[index].plain for row in rows]
        longest = max((cell_len(c) for c in cells), default=0)
        if column.whole:
            need = max(longest, cell_len(column.header))
            minimum.append(need)
            wanted.append(need)
        else:
            words = max([_longest_word(column.header), *(_longest_word(c) for c in cells)])
            minimum.append(max(words, 1))
            wanted.append(max(longest, cell_len(column.header), 1))
    spare = room - sum(minimum)
    if spare < 0:
        return []
    widths = list(minimum)
    # the prose columns share what is left, in proportion to how much more each would like
    more = {i: wanted[i] - minimum[i] for i, c in enumerate(columns) if not c.whole}
    total = sum(more.values())
    if total:
        for i, extra in more.items():
            widths[i] += min(extra, spare * extra // total)
    return widths


def _print_table(
    console: Console, title: str, columns: Sequence[Column], cells: Sequence[Sequence[Text]]
) -> bool:
    """Print the table if it fits with every whole value intact; whether it did."""
    overhead = 3 * len(columns) + 1  # a space either side of each cell, and the rules
    widths = _widths(columns, cells, console.width - overhead)
    if not widths:
        return False
    table = Table(title=Text(title, style="italic"))
    for column, width in zip(columns, widths, strict=True):
        table.add_column(
            column.header,
            width=width,
            no_wrap=column.whole,
            overflow="fold",  # never an ellipsis; at these widths nothing needs folding
        )
    for row in cells:
        table.add_row(*row)
    console.print(table)
    return True


def _print_below(
    console: Console, columns: Sequence[Column], cells: Sequence[Sequence[Text]]
) -> None:
    """The ``below`` columns as ``heading  value`` lines, one per record and column."""
    for index, column in enumerate(columns):
        if not column.below or not any(row[index].plain for row in cells):
            continue
        console.print(Text(f"{column.header}:", style="dim"))
        for row in cells:
            if row[index].plain:
                heading = Text(" ").join(
                    cell for cell, c in zip(row, columns, strict=True) if c.heading and cell
                )
                line = Text.assemble("  ", heading, "  ", row[index])
                console.print(line, soft_wrap=True, crop=False)


def print_listing(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
) -> None:
    """Print ``rows`` under ``title``: a table when it fits ``console``'s width with every
    whole value intact (if need be with the ``below`` columns listed under it), else one block
    per record."""
    cells = [[_text(cell) for cell in row] for row in rows]
    used = [i for i, c in enumerate(columns) if c.heading or any(r[i].plain for r in cells)]
    columns = [columns[i] for i in used]  # a column with nothing in it is left out
    cells = [[row[i] for i in used] for row in cells]
    if _print_table(console, title, columns, cells):
        return
    if any(c.below for c in columns):
        kept = [i for i, c in enumerate(columns) if not c.below]
        short = [[row[i] for i in kept] for row in cells]
        if _print_table(console, title, [columns[i] for i in kept], short):
            _print_below(console, columns, cells)
            return
    console.print(Text(title, style="italic"), soft_wrap=True)
    label_width = max(
        (cell_len(c.header) for c in columns if not c.heading and c.header), default=0
    )
    for row in cells:
        heading = Text(" ").join(
            cell for cell, column in zip(row, columns, strict=True) if column.heading and cell
        )
        console.print(Text.assemble(heading, style="bold") if heading else Text("-"))
        for cell, column in zip(row, columns, strict=True):
            if column.heading or not cell.plain:
                continue
            label = Text(f"    {column.header.ljust(label_width)}  ", style="dim")
            console.print(Text.assemble(label, cell), soft_wrap=True, crop=False)
