"""Text fields of an upload that end up in Panopto's XML manifest: no control characters.

XML 1.0 cannot carry most C0 control characters at all, so a title holding one would fail
only after the whole video was sent. They are refused when the field arrives instead: a 400
naming the field, before the file streams when the form sends the field first.
"""

from __future__ import annotations

import unicodedata

#: Line breaks and tabs are fine in a description, not in a title.
_ALLOWED = {"title": frozenset(), "description": frozenset("\t\n\r")}
CHECKED_FIELDS = frozenset(_ALLOWED)


def control_character_problem(name: str, value: str) -> str | None:
    """Why ``value`` of field ``name`` is refused (one line), else None."""
    allowed = _ALLOWED.get(name)
    if allowed is None:
        return None
    for ch in value:
        if ch in allowed:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\ufffe\uffff":
            return f"{name} holds the control character U+{ord(ch):04X}; remove it " + (
                "(line breaks and tabs are allowed)" if allowed else "(titles are one line)"
            )
    return None
