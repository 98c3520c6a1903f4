"""The device authorization grant (RFC 8628): sign in on another device with a short code.

``start`` asks the device authorization endpoint for a code; the caller shows ``user_code`` and
``verification_uri``; ``poll`` asks the token endpoint every ``interval`` seconds until the person
approves (``authorization_pending`` → wait, ``slow_down`` → wait 5 s longer, ``access_denied`` →
refused, ``expired_token`` or the deadline → start again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE

from vidauth.config import Profile
from vidauth.domain.tokens import TokenSet
from vidauth.errors import AuthorizationDenied, ConfigError, ErrorCode, OAuthError, SignInRequired
from vidauth.logs import register_secret
from vidauth.oauth.token_endpoint import TokenEndpoint

DEFAULT_INTERVAL_S = 5.0
SLOW_DOWN_STEP_S = 5.0


@dataclass(frozen=True)
class DeviceAuthorization:
    """The device authorization response; ``device_code`` is secret and never shown."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float

    def __post_init__(self) -> None:
        register_secret(self.device_code)


def start(endpoint: TokenEndpoint, profile: Profile) -> DeviceAuthorization:
    """Ask for a device code (client authenticated like at the token endpoint)."""
    url = profile.endpoints.device_authorization_url
    if not url:
        raise ConfigError(
            f"profile {profile.name!r}: the provider advertises no device authorization endpoint; "
            "set device_authorization_url, or sign in in a browser"
        )
    data = endpoint.post_form(
        url,
        {"scope": profile.scope or None},
        retry="always",
        during="starting the device sign-in",
        require="device_code",
    )
    uri = data.get("verification_uri") or data.get("verification_url")
    if not isinstance(uri, str) or not isinstance(data.get("user_code"), str):
        raise OAuthError(
            "invalid_response",
            f"starting the device sign-in failed: {url} gave no user_code/verification_uri; "
            "check device_authorization_url",
        )
    complete = data.get("verification_uri_complete")
    return DeviceAuthorization(
        device_code=str(data["device_code"]),
        user_code=data["user_code"],
        verification_uri=uri,
        verification_uri_complete=complete if isinstance(complete, str) else None,
        expires_in=_number(data.get("expires_in"), 600.0),
        interval=max(_number(data.get("interval"), DEFAULT_INTERVAL_S), 0.0),
    )


def _number(value: object, default: float) -> float:
    try:
        return float(value) if value is not None else default  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def poll(
    endpoint: TokenEndpoint,
    device: DeviceAuthorization,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TokenSet:
    """Poll the token endpoint until the person approves, refuses, or the code expires."""
    interval = device.interval
    deadline = clock() + device.expires_in
    while True:
        sleep(interval)
        if clock() > deadline:
            raise SignInRequired(
                "the device code expired before it was approved",
                code=ErrorCode.SIGN_IN_TIMEOUT,
                device=True,
            )
        try:
            return endpoint.request(
                DEVICE_CODE_GRANT_TYPE,
                retry="always",
                during="waiting for the device sign-in",
                device_code=device.device_code,
            )
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += SLOW_DOWN_STEP_S
                continue
            if exc.error == "access_denied":
                raise AuthorizationDenied(
                    "the device sign-in was refused (access_denied)", refused=True, device=True
                ) from None
            if exc.error == "expired_token":
                raise SignInRequired(exc.message) from None
            raise
