"""The Universal Capture Specification manifest that tells Panopto what was uploaded."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

UCS_NAMESPACE = "http://tempuri.org/UniversalCaptureSpecification/v1"
MANIFEST_NAME = "vidauth-manifest.xml"


def build_manifest(
    title: str,
    filename: str,
    *,
    description: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """A UCS manifest (UTF-8 XML) naming ``filename`` as the primary video.

    ElementTree escapes ``&``, ``<`` and quotes, so any title survives.
    """
    ns = f"{{{UCS_NAMESPACE}}}"
    when = (date or datetime.now(UTC)).astimezone(UTC)
    session = ET.Element(f"{ns}Session")
    ET.SubElement(session, f"{ns}Title").text = title
    if description:
        ET.SubElement(session, f"{ns}Description").text = description
    ET.SubElement(session, f"{ns}Date").text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    videos = ET.SubElement(session, f"{ns}Videos")
    video = ET.SubElement(videos, f"{ns}Video")
    ET.SubElement(video, f"{ns}Start").text = "PT0S"
    ET.SubElement(video, f"{ns}File").text = filename
    ET.SubElement(video, f"{ns}Type").text = "Primary"
    return ET.tostring(
        session, encoding="utf-8", xml_declaration=True, default_namespace=UCS_NAMESPACE
    )
