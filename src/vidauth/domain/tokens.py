"""Tokens as vidauth holds them: what the OAuth layer gets from a token endpoint and the store
keeps, below both (built from an answer by :func:`vidauth.oauth.token_response.token_set`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vidauth.logs import register_secret


@dataclass
class TokenSet:
    """An OAuth2 token response, normalized. ``repr`` shows no token values."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_at: float | None = None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    scope: str | None = None

    def __post_init__(self) -> None:
        # Every token set passes here (fresh answers and stored ones alike): from now on the
        # log filter masks its tokens wherever they would appear.
        for value in (self.access_token, self.refresh_token, self.id_token):
            register_secret(value)

    def seconds_left(self, now: float | None = None) -> float:
        """Seconds until expiry (infinite when the server gave no lifetime)."""
        if self.expires_at is None:
            return float("inf")
        return self.expires_at - (time.time() if now is None else now)

    def is_fresh(self, min_validity: float) -> bool:
        """At least ``min_validity`` seconds left."""
        return self.seconds_left() >= min_validity


__all__ = ["TokenSet"]
