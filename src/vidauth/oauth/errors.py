"""RFC 6749 error codes → one line with the likely fix."""

from __future__ import annotations

from vidauth.errors import OAuthError

_FIXES: dict[str, str] = {
    "invalid_request": "the request was malformed or missing a parameter; check the profile's "
    "endpoints and parameters (vidauth doctor)",
    "unauthorized_client": "this client may not use this grant type; in the provider's client "
    "settings allow it (Panopto: a Server-side Web Application for sign-in links)",
    "access_denied": "access was refused at the consent screen; run `vidauth login` again and "
    "choose Allow",
    "unsupported_response_type": "the provider does not allow response_type=code for this "
    "client; check the client type",
    "invalid_scope": "the provider refused the requested scope; check the profile's scope",
    "server_error": "the authorization server failed; try again later",
    "temporarily_unavailable": "the authorization server is temporarily unavailable; try again "
    "later",
    "invalid_client": "the client id or secret was not accepted; check PANOPTO_CLIENT_ID / "
    "PANOPTO_CLIENT_SECRET and that the client type is a server-side web application",
    "invalid_grant": "the code or refresh token is invalid, expired, already used or issued "
    "for another redirect URI; run `vidauth login` again",
    "unsupported_grant_type": "the provider does not support this grant for this client; check "
    "the client type",
    "slow_down": "the provider asked to poll more slowly",
    "authorization_pending": "the person has not approved the device yet",
    "expired_token": "the device code expired before it was approved; start again",
}

RETRYABLE_ERRORS = frozenset({"server_error", "temporarily_unavailable"})


def oauth_error(
    error: str, description: str | None = None, *, during: str, hint: str | None = None
) -> OAuthError:
    """An OAuthError for ``error`` raised while doing ``during``, with the fix.

    ``description`` is the server's text; it is included, clipped, since servers put no secrets
    in it (it is shown to the person anyway on the consent screen).
    """
    code = error if isinstance(error, str) and error.isascii() else "invalid_response"
    fix = hint or _FIXES.get(code, "see the provider's documentation for this error")
    said = ""
    if description:
        clean = " ".join(str(description).split())[:200]
        said = f" ({clean})"
    return OAuthError(code, f"{during} failed: {code}{said}: {fix}", description=description)
