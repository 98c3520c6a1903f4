"""The authorization code grant (RFC 6749 §4.1) with optional PKCE (RFC 7636).

``AuthorizationRequest.create`` makes the link (fresh ``state`` and ``nonce`` every time);
``receive_redirect`` waits for the redirect on the loopback listener, or for the person to paste
the final URL; ``finish`` exchanges the code exactly once and identifies the account.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from vidauth.config import Profile
from vidauth.errors import AuthorizationDenied, ConfigError, ErrorCode, SignInRequired
from vidauth.logs import register_secret
from vidauth.oauth.errors import oauth_error
from vidauth.oauth.loopback import LoopbackListener, RedirectResult, parse_redirect


@dataclass(frozen=True)
class AuthorizationRequest:
    """One sign-in attempt: the link and the values only this process knows."""

    url: str
    redirect_uri: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str | None = field(default=None, repr=False)

    @classmethod
    def create(cls, profile: Profile, scope: str | None = None) -> AuthorizationRequest:
        """A new request for ``profile`` (PKCE S256 when the profile uses it), asking for
        ``scope`` (default: the profile's)."""
        if not profile.endpoints.authorize_url:
            raise ConfigError(f"profile {profile.name!r} has no authorization endpoint")
        state, nonce = generate_token(43), generate_token(43)
        verifier = generate_token(64) if profile.pkce else None
        for secret in (state, verifier):
            register_secret(secret)
        params: dict[str, str] = {"nonce": nonce, **profile.authorize_params}
        if verifier:
            params["code_challenge"] = create_s256_code_challenge(verifier)
            params["code_challenge_method"] = "S256"
        url = prepare_grant_uri(
            profile.endpoints.authorize_url,
            profile.client_id,
            "code",
            redirect_uri=profile.redirect_uri,
            scope=scope if scope is not None else profile.scope,
            state=state,
            **params,
        )
        return cls(
            url=url,
            redirect_uri=profile.redirect_uri,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
        )


def check_result(result: RedirectResult) -> str:
    """The code, or the refusal as AuthorizationDenied / OAuthError (exit 3)."""
    if result.error:
        if result.error == "access_denied":
            detail = f" ({result.error_description})" if result.error_description else ""
            raise AuthorizationDenied(f"sign-in was refused: access_denied{detail}", refused=True)
        raise oauth_error(result.error, result.error_description, during="signing in")
    assert result.code is not None
    return result.code


def _read_pasted(
    request: AuthorizationRequest,
    stream: TextIO,
    answers: queue.Queue[RedirectResult],
    say: Callable[[str], None],
) -> None:
    expected_path = urlsplit(request.redirect_uri).path or "/"
    for line in stream:
        text = line.strip()
        if not text:
            continue
        parts = urlsplit(text)
        if (parts.path or "/") != expected_path:
            say(
                f"that is not the redirect URL (expected a URL starting with "
                f"{request.redirect_uri}); paste the whole address from the browser"
            )
            continue
        outcome = parse_redirect(parts.query, request.state)
        if isinstance(outcome, str):
            say(f"{outcome}; paste the address of the page the sign-in ended on")
            continue
        answers.put(outcome)
        return


def receive_redirect(
    request: AuthorizationRequest,
    *,
    open_browser: Callable[[str], object] | None,
    announce: Callable[[str], None],
    timeout: float,
    paste_from: TextIO | None = None,
    listen: bool = True,
) -> str:
    """Wait for the redirect and return the code.

    The listener is bound before the link is announced or the browser opened. When
    ``paste_from`` is given, a pasted redirect URL is accepted too (headless machines).
    """
    answers: queue.Queue[RedirectResult] = queue.Queue()
    listener: LoopbackListener | None = None
    if listen:
        listener = LoopbackListener(request.redirect_uri, request.state).start()
    try:
        announce(request.url)
        if open_browser is not None:
            open_browser(request.url)
        if paste_from is not None:
            threading.Thread(
                target=_read_pasted,
                args=(request, paste_from, answers, announce),
                daemon=True,
                name="vidauth-paste",
            ).start()
        result = _wait(listener, answers, timeout)
    finally:
        if listener is not None:
            listener.stop()
    if result is None:
        raise SignInRequired(
            f"no sign-in arrived within {timeout:g} s",
            code=ErrorCode.SIGN_IN_TIMEOUT,
            timeout=timeout,
        )
    return check_result(result)


def _wait(
    listener: LoopbackListener | None, answers: queue.Queue[RedirectResult], timeout: float
) -> RedirectResult | None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        step = min(left, 0.1)
        if listener is not None:
            got = listener.wait(step)
            if got is not None:
                return got
        try:
            return answers.get(timeout=0 if listener is not None else step)
        except queue.Empty:
            continue


def stdin_if_interactive() -> TextIO | None:
    """Standard input when a person could paste into it (a readable, open stream)."""
    try:
        if sys.stdin is None or sys.stdin.closed:
            return None
    except ValueError:
        return None
    return sys.stdin
