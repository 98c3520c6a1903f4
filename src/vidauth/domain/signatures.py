"""The S3 signature schemes an upload can use: the one definition the profile, the upload
options and the upload target check against."""

from __future__ import annotations

from typing import Literal, get_args

SignatureScheme = Literal["s3", "s3v4", "unsigned"]
"""``s3`` (SigV2), ``s3v4`` (SigV4) or ``unsigned``."""
SignatureChoice = Literal["auto", SignatureScheme]
"""A scheme, or ``auto``: found per upload host and remembered."""

AUTO = "auto"
#: The schemes, in the order ``auto`` tries them.
SCHEMES: tuple[SignatureScheme, ...] = get_args(SignatureScheme)
#: What a caller may ask for.
CHOICES: tuple[str, ...] = (AUTO, *SCHEMES)
