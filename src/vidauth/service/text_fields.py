"""One rule for every text field the service takes, derived ones included.

Titles, descriptions, folders, user ids, callback URLs, paths and file names end up in
Panopto's XML manifest, in the database (PostgreSQL refuses NUL in text), in log lines and on
pages. A character that XML cannot carry, that a database refuses, or that makes text read
other than it is (line separators, bidi overrides) would fail only after the whole video was
sent, look like an outage, or mislead a reader. So it is refused when the field arrives: a 400
naming the field, before the file streams when the form sends the field first.
"""

from __future__ import annotations

import unicodedata

#: Line breaks and tabs are fine in a description, nowhere else.
_MULTILINE = frozenset("\t\n\r")
_MULTILINE_FIELDS = frozenset({"description"})
#: Bidi embeddings/overrides (U+202A to 202E) and isolates (U+2066 to 2069): text that reads other
#: than it is. U+2028/2029 break lines where no line break is allowed.
_REFUSED = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u2028", "\u2029", "\ufffe", "\uffff"]
)


def character_problem(name: str, value: str) -> str | None:
    """Why ``value`` of field ``name`` is refused (one line naming the field), else None.

    Refused everywhere: C0 and C1 control characters, DEL, NUL, lone surrogates, U+2028/2029,
    bidi overrides and isolates, and the non-characters U+FFFE/FFFF. Only ``description``
    may hold tabs and line breaks.
    """
    allowed = _MULTILINE if name in _MULTILINE_FIELDS else frozenset()
    for ch in value:
        if ch in allowed:
            continue
        if ch in _REFUSED or unicodedata.category(ch) in ("Cc", "Cs"):
            category = unicodedata.category(ch)
            what = {"Cc": "the control character", "Cs": "a lone surrogate"}.get(
                category, "the character"
            )
            return f"{name} holds {what} U+{ord(ch):04X}; remove it" + (
                " (line breaks and tabs are allowed)" if allowed else ""
            )
    return None


def control_character_problem(name: str, value: str) -> str | None:
    """The form fields' check, as each arrives: :func:`character_problem`. ``path`` is left to
    :mod:`~vidauth.service.shared_files`, which applies the same rule but answers every
    refusal alike (so that no answer tells which files exist)."""
    return None if name == "path" else character_problem(name, value)
