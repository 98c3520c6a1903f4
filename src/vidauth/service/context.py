"""Everything a service process shares: settings, the profile, the token store, HTTP clients."""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import replace
from functools import cached_property
from typing import Any

import httpx

from vidauth.client import Vidauth
from vidauth.config import Profile, Settings, validate_redirect_uri
from vidauth.http import BearerAuth, build_client
from vidauth.logs import register_secret
from vidauth.oauth.manager import TokenManager
from vidauth.oauth.token_endpoint import TokenEndpoint
from vidauth.service.migrate import migrate_service
from vidauth.service.settings import ServiceSettings
from vidauth.store import Database, TokenStore
from vidauth.store.crypto import read_key_file
from vidauth.store.tokens import TokenSet

#: A token is refreshed once less than ``min_validity`` seconds are left — but never earlier than
#: when this share of its lifetime is left: otherwise a token living less than min_validity
#: (say 5 s against the 300 s default) would be refreshed again on every API call.
TOKEN_LIFE_SHARE = 0.2


class TokenLifetimes:
    """The longest validity seen per account in this process: a lower bound of the lifetime
    of its access tokens (the token store does not keep when a token was issued)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, float] = {}

    def get(self, account_id: int) -> float | None:
        """Seconds, or None before the account's first token was seen."""
        with self._lock:
            return self._seen.get(account_id)

    def observe(self, account_id: int, seconds_left: float) -> None:
        """Note a token of the account with ``seconds_left`` (expired ones teach nothing)."""
        with self._lock:
            if seconds_left > self._seen.get(account_id, 0.0):
                self._seen[account_id] = seconds_left


class ServiceTokenManager(TokenManager):
    """A TokenManager whose refresh margin is capped at a share of the token's lifetime."""

    def __init__(self, *args: Any, lifetimes: TokenLifetimes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lifetimes = lifetimes

    def tokens(self, min_validity: float | None = None) -> TokenSet:
        """The token set, fresh for ``min_validity`` seconds or a fifth of its lifetime."""
        need = self.min_validity if min_validity is None else min_validity
        known = self.lifetimes.get(self.account_id)
        if known is None:  # first use in this process: look before deciding to refresh
            current = self.store.load_tokens(self.account_id)
            if current is not None:
                self.lifetimes.observe(self.account_id, current.seconds_left())
            known = self.lifetimes.get(self.account_id)  # None while expired
        if known is not None:
            need = min(need, known * TOKEN_LIFE_SHARE)
        result = super().tokens(need)
        self.lifetimes.observe(self.account_id, result.seconds_left())
        return result


class ServiceContext:
    """Shared, thread-safe pieces of one ``serve`` or ``worker`` process."""

    def __init__(
        self,
        settings: Settings,
        service: ServiceSettings,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        callback = validate_redirect_uri(service.callback_url, "VIDAUTH_PUBLIC_URL")
        profile = replace(settings.profile(), redirect_uri=callback)
        client_secret = profile.client_secret.value if profile.client_secret else None
        for secret in (client_secret, service.webhook_secret, service.metrics_token):
            register_secret(secret)
        self.va = Vidauth(settings, profile=profile, transport=transport)
        self._transport = transport
        self.lifetimes = TokenLifetimes()

    @property
    def profile(self) -> Profile:
        """The Panopto profile, with the service's callback as its redirect_uri."""
        return self.va.profile

    @cached_property
    def store(self) -> TokenStore:
        """The token store, migrated (the service's tables included)."""
        store = self.va.store
        migrate_service(store.db)
        return store

    @property
    def db(self) -> Database:
        """The shared database."""
        return self.store.db

    @property
    def http(self) -> httpx.Client:
        """Plain client for the token endpoint and discovery."""
        return self.va.http

    @property
    def token_endpoint(self) -> TokenEndpoint:
        """The profile's token endpoint."""
        return self.va.token_endpoint

    def profile_key(self, tenant: str, external_user_id: str) -> str:
        """The store's ``profile_key`` for one backend user: each has a grant of their own."""
        digest = hashlib.sha256(f"{tenant}\0{external_user_id}".encode()).hexdigest()[:32]
        return f"{self.profile.key}|svc:{digest}"

    def token_manager(self, account_id: int, **options: Any) -> TokenManager:
        """A TokenManager for a stored account (single-flight refresh across processes)."""
        options.setdefault("min_validity", self.service.token_min_validity)
        return ServiceTokenManager(
            self.store, self.token_endpoint, account_id, lifetimes=self.lifetimes, **options
        )

    def api_client(self, manager: TokenManager) -> httpx.Client:
        """A client for the Panopto site that sends the account's fresh bearer tokens."""
        auth = BearerAuth(manager, min_validity=self.service.token_min_validity)
        return build_client(
            self.va.retry_policy,
            auth=auth,
            base_url=self.profile.api_base,
            transport=self._transport,
        )

    @cached_property
    def page_key(self) -> bytes:
        """HMAC key for signed page links, derived from the token store's key (shared by every
        instance that can read the tokens)."""
        self.store  # noqa: B018 - creates the key file when there is none yet
        if self.settings.secret_keys:
            base = self.settings.secret_keys[0].value.encode()
        else:
            base = read_key_file(self.settings.home) or b""
        return hmac.new(base, b"vidauth service page links v1", hashlib.sha256).digest()

    def close(self) -> None:
        """Release connections."""
        self.va.close()
