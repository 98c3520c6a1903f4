"""RFC 6749 error codes → one line with the likely fix, in words any caller can use.

The fixes name no command; the CLI adds which ``vidauth`` command to run
(:mod:`vidauth.cli.errors`), keyed by the error's ``oauth_error`` fact.
"""

from __future__ import annotations

import re

from vidauth.errors import OAuthError

_FIXES: dict[str, str] = {
    # RFC 6749 §4.1.2.1 (authorization endpoint)
    "invalid_request": "the request was malformed or missing a parameter; check the profile's "
    "endpoints and parameters",
    "unauthorized_client": "this client may not use this grant type; in the provider's client "
    "settings allow it (Panopto: a Server-side Web Application for sign-in links, a User Based "
    "Server Application for passwords, a Server Application for client credentials)",
    "access_denied": "access was refused; sign in again and choose Allow",
    "unsupported_response_type": "the provider does not allow response_type=code for this "
    "client; check the client type",
    "invalid_scope": "the provider refused the requested scope; check the profile's scope "
    "against the scopes the client is allowed",
    "server_error": "the authorization server failed; try again later",
    "temporarily_unavailable": "the authorization server is temporarily unavailable; try again "
    "later",
    # RFC 6749 §5.2 (token endpoint)
    "invalid_client": "the client was not authenticated: check the client id and secret "
    "(PANOPTO_CLIENT_ID / PANOPTO_CLIENT_SECRET, or the profile's client_id / client_secret), "
    "the profile's client_auth (client_secret_basic or client_secret_post) and that the client "
    "type is confidential",
    "invalid_grant": "the code, refresh token or credentials are invalid, expired, already used "
    "or issued for another redirect URI; sign in again",
    "unsupported_grant_type": "the provider does not support this grant for this client; check "
    "the client type",
    # RFC 7009 (revocation)
    "unsupported_token_type": "the provider cannot revoke this kind of token; delete it locally",
    # RFC 6750 (resource servers)
    "invalid_token": "the access token was refused; sign in again",
    "insufficient_scope": "the token lacks a scope this call needs; add it to the profile's "
    "scope and sign in again",
    # RFC 8628 (device authorization grant)
    "slow_down": "the provider asked to poll more slowly",
    "authorization_pending": "the person has not approved the device yet",
    "expired_token": "the device code expired before it was approved; start the device "
    "sign-in again and approve sooner",
    # OpenID Connect Core §3.1.2.6
    "interaction_required": "the provider needs the person to interact; sign in in a browser",
    "login_required": "the provider needs the person to log in; sign in again",
    "account_selection_required": "the provider needs the person to pick an account; sign in again",
    "consent_required": "the provider needs the person's consent; sign in again and choose Allow",
    "invalid_request_uri": "the provider refused the request_uri; check the profile",
    "invalid_request_object": "the provider refused the request object; check the profile",
    "request_not_supported": "the provider does not support request objects",
    "request_uri_not_supported": "the provider does not support request_uri",
    "registration_not_supported": "the provider does not support registration parameters",
}

RETRYABLE_ERRORS = frozenset({"server_error", "temporarily_unavailable"})


_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>,;)]+", re.IGNORECASE)


def redirect_mismatch_fix(description: str | None, redirect_uri: str) -> str | None:
    """The fix for a redirect URI mismatch (both URIs), when ``description`` is about one."""
    text = description or ""
    if "redirect" not in text.lower():
        return None
    registered = [u.rstrip(".") for u in _URL.findall(text) if u.rstrip(".") != redirect_uri]
    theirs = f"; the server has registered {registered[0]}" if registered else ""
    return (
        f"the redirect URI does not match the client's registration: vidauth sent "
        f"{redirect_uri}{theirs}; register exactly {redirect_uri} for the client, or set "
        "redirect_uri (PANOPTO_REDIRECT_URI) to the registered one"
    )


def oauth_error(
    error: str,
    description: str | None = None,
    *,
    during: str,
    hint: str | None = None,
    redirect_uri: str | None = None,
) -> OAuthError:
    """An OAuthError for ``error`` raised while doing ``during``, with the fix.

    ``description`` is the server's text; it is included, clipped, since servers put no secrets
    in it (it is shown to the person anyway on the consent screen). With ``redirect_uri`` (the
    configured one), a description about a redirect mismatch yields a fix naming both URIs.
    """
    code = error if isinstance(error, str) and error.isascii() else "invalid_response"
    mismatch = (
        redirect_mismatch_fix(description, redirect_uri)
        if redirect_uri and code in ("invalid_request", "invalid_grant", "invalid_client")
        else None
    )
    fix = mismatch or hint or _FIXES.get(code, "see the provider's documentation for this error")
    said = ""
    if description:
        clean = " ".join(str(description).split())[:200]
        said = f" ({clean})"
    return OAuthError(code, f"{during} failed: {code}{said}: {fix}", description=description)
