"""The shapes of the HTTP API's answers, for the OpenAPI document and for checking them.

Routes return plain dicts; FastAPI validates them against these models, so the document that
backend developers generate clients from is the answer they get. Every moment is a string in
RFC 3339 with an explicit offset, to the second (``2026-12-04T02:55:40+00:00``), in answers and
webhook bodies alike (:mod:`vidauth._times`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

#: A moment: RFC 3339 with an explicit offset (``format: date-time`` in the document).
Timestamp = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        examples=["2026-12-04T02:55:40+00:00"],
        description="RFC 3339 with an explicit offset, to the second.",
    ),
]

UploadState = Literal[
    "queued",
    "uploading",
    "processing",
    "complete",
    "failed",
    "cancelled",
    "waiting_for_consent",
]

# What text_fields refuses, as a regular-expression class (lone surrogates too, which cannot
# arrive in a URL and which some regular-expression engines refuse in a pattern).
_REFUSED = r"\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff"
#: Text that passes the one rule (text_fields) and holds something besides spaces.
PRINTABLE_PATTERN = f"^[^{_REFUSED}]*[^\\s{_REFUSED}][^{_REFUSED}]*$"
# The constraint checked on every external_user_id, for the document; the route checks it and
# answers 400 (``invalid_request``) rather than FastAPI's generic 422.
USER_ID_SCHEMA: dict[str, Any] = {
    "minLength": 1,
    "maxLength": 255,
    "pattern": PRINTABLE_PATTERN,
    "description": "The backend's id for the user: 1 to 255 printable characters (no control "
    "characters, line separators or bidi overrides).",
}


#: Printable: no control characters, and something besides spaces.
USERNAME_PATTERN = r"^[^\u0000-\u001f\u007f]*[^\u0000-\u0020\u007f][^\u0000-\u001f\u007f]*$"


class ErrorBody(BaseModel):
    """Every error: a code, and one line naming the cause and the fix."""

    error: str = Field(examples=["invalid_request"])
    detail: str


class ConnectRequest(BaseModel):
    """Optional: who the user must sign in to Panopto as, and the name the start page shows."""

    expected_username: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="The Panopto user name the backend expects (compared case-insensitively); "
        "a sign-in as anyone else connects nothing.",
        # Documented here, checked by the route (400 with a clear line).
        json_schema_extra={"pattern": USERNAME_PATTERN},
    )
    display_name: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Whom the link is for, as the user knows themselves (e.g. their full "
        "name): the start page says the link is for them, so that someone it was forwarded "
        "to can turn it down. Without it the page shows external_user_id.",
        examples=["Alice Example"],
        # Documented here, checked by the route (400 naming the field).
        json_schema_extra={"pattern": PRINTABLE_PATTERN},
    )


class ConnectLink(BaseModel):
    """A link the user opens, in their own browser, to connect their Panopto account (once)."""

    connect_url: str = Field(
        description="vidauth's start page: it says whom the link is for; its \"Continue to "
        'Panopto" button binds the sign-in to that browser and goes on to Panopto, and "This '
        'link is not for me" ends the link. Merely fetching it uses nothing up. Send the '
        "user's browser here."
    )
    authorize_url: str = Field(description="The same URL as connect_url (kept for old clients).")
    expires_at: Timestamp


class AccountStatus(BaseModel):
    """Whether the user's Panopto account is connected; never a token."""

    external_user_id: str
    status: Literal["connected", "needs_reconsent", "not_connected"]
    username: str | None = None
    scopes: list[str] = []
    expires_at: Timestamp | None = Field(None, description="When the access token expires.")
    refreshable: bool | None = None
    refresh_outcome_unknown: bool | None = Field(
        None,
        description="The last refresh was sent and its answer lost: under strict rotation its "
        "refresh token may be spent, so the next use may need the user to connect again.",
    )
    connected_at: Timestamp | None = Field(None, description="When the user last connected.")


class PageLink(BaseModel):
    """A signed, expiring link to the user's uploads page."""

    url: str
    expires_at: Timestamp


class UploadAccepted(BaseModel):
    """The queued upload (202)."""

    upload_id: str
    state: UploadState


class Upload(BaseModel):
    """An upload's state and progress, and where to watch the video once complete."""

    upload_id: str
    external_user_id: str
    state: UploadState
    title: str
    folder: str
    folder_id: str | None
    bytes_sent: int
    bytes_total: int
    session_id: str | None
    viewer_url: str | None
    error: str | None
    error_code: str | None = Field(
        default=None, description="the error's stable code (vidauth.errors.ErrorCode)"
    )
    cancel_requested: bool
    created_at: Timestamp
    updated_at: Timestamp


class UploadList(BaseModel):
    """The tenant's uploads, newest first."""

    uploads: list[Upload]


_ERRORS = {
    400: "A field or parameter is invalid; `detail` names it.",
    401: "No API key, or not a valid one.",
    404: "Not found among the API key's tenant's accounts or uploads.",
    409: "The request conflicts with the current state; `detail` says what to do.",
    413: "The request or the file is over the service's limit.",
    415: "Not multipart/form-data, or the file is not a video.",
    422: "A parameter has the wrong type or is out of range.",
    503: "The database or the upload directory is unavailable; try again.",
    507: "The service's upload directory is full (`insufficient_storage`; try again later), or "
    "the tenant's share of it is used up (`spool_quota_exceeded`: VIDAUTH_TENANT_SPOOL_BYTES, "
    "VIDAUTH_TENANT_WAITING_UPLOADS; wait for uploads to finish or cancel some).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route answering these error codes with :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": _ERRORS[code]} for code in codes}
