"""Parse and check a Universal Capture Specification manifest, as Panopto's ingest does.

The manifest is the ``*.xml`` object a client uploads next to its media. Only the parts the
sandbox acts on are extracted (title, description, date, the video files); everything else
in the document is accepted and ignored. Documents with a DTD or entity declarations are
rejected before the tree is built, so entity expansion attacks cannot happen.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from xml.parsers import expat

UCS_NAMESPACE = "http://tempuri.org/UniversalCaptureSpecification/v1"
VIDEO_TYPES = frozenset({"Primary", "Secondary", "Audio"})
MAX_MANIFEST_BYTES = 1024 * 1024

_NS = f"{{{UCS_NAMESPACE}}}"


class ManifestError(ValueError):
    """The manifest is unusable; the message says why (it becomes the sessionUpload Message)."""


@dataclass(frozen=True)
class ManifestVideo:
    """One ``Videos/Video`` entry."""

    file: str
    type: str = "Primary"
    start: str | None = None


@dataclass(frozen=True)
class Manifest:
    """What the sandbox needs from a manifest."""

    title: str
    description: str | None = None
    date: datetime | None = None
    videos: list[ManifestVideo] = field(default_factory=list)


def safe_fromstring(data: bytes) -> ET.Element:
    """Parse XML with the standard library, refusing any DTD or entity declaration.

    Raises :class:`ValueError` (with a message fit for a client) when the document is malformed
    or declares a DTD. A first pass with expat and forbidding handlers runs before ElementTree
    builds the tree, so no entity is ever expanded.
    """

    def forbid(*_args: object) -> None:
        raise ValueError("XML with a DTD or entity declarations is not accepted")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.UnparsedEntityDeclHandler = forbid
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    try:
        return ET.fromstring(data)  # noqa: S314 - DTDs and entities were rejected above
    except ET.ParseError as exc:  # pragma: no cover - expat already accepted it
        raise ValueError(f"not well-formed XML: {exc}") from None


def _text(element: ET.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return text or None


def _parse_date(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ManifestError(f"Date {value!r} is not an xs:dateTime") from None


def parse_manifest(data: bytes) -> Manifest:
    """Parse and check a manifest document; raise :class:`ManifestError` saying what is wrong.

    Checks: size, well-formedness, no DTD/entities, root ``Session`` in the UCS namespace, a
    non-empty ``Title``, a valid ``Date`` if present, at least one ``Videos/Video`` and for each
    a non-empty ``File`` and a known ``Type``. Whether the files exist is the caller's business.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        root = safe_fromstring(data)
    except ValueError as exc:
        raise ManifestError(f"the manifest is unusable: {exc}") from None
    if root.tag != f"{_NS}Session":
        raise ManifestError(
            f"the root element must be Session in namespace {UCS_NAMESPACE}, not {root.tag}"
        )
    title = _text(root.find(f"{_NS}Title"))
    if not title:
        raise ManifestError("the manifest has no Title (it is required)")
    date_text = _text(root.find(f"{_NS}Date"))
    videos: list[ManifestVideo] = []
    for index, video in enumerate(root.findall(f"{_NS}Videos/{_NS}Video"), start=1):
        file = _text(video.find(f"{_NS}File"))
        if not file:
            raise ManifestError(f"Video {index} has no File (it is required)")
        kind = _text(video.find(f"{_NS}Type")) or "Primary"
        if kind not in VIDEO_TYPES:
            raise ManifestError(
                f"Video {index} has Type {kind!r}; expected one of Primary, Secondary, Audio"
            )
        videos.append(ManifestVideo(file, kind, _text(video.find(f"{_NS}Start"))))
    if not videos:
        raise ManifestError("the manifest lists no Videos/Video")
    return Manifest(
        title=title,
        description=_text(root.find(f"{_NS}Description")),
        date=_parse_date(date_text) if date_text else None,
        videos=videos,
    )
