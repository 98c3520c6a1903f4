"""Everything a service process shares: settings, the profile, the token store, HTTP clients."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from functools import cached_property
from typing import Any

import httpx

from vidauth.client import Vidauth
from vidauth.config import Profile, Settings, validate_redirect_uri
from vidauth.http import BearerAuth, build_client
from vidauth.oauth.manager import TokenManager
from vidauth.oauth.token_endpoint import TokenEndpoint
from vidauth.service.schema import ensure_service_schema
from vidauth.service.settings import ServiceSettings
from vidauth.store import Database, TokenStore
from vidauth.store.crypto import read_key_file


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
        self.va = Vidauth(settings, profile=profile, transport=transport)
        self._transport = transport

    @property
    def profile(self) -> Profile:
        """The Panopto profile, with the service's callback as its redirect_uri."""
        return self.va.profile

    @cached_property
    def store(self) -> TokenStore:
        """The token store, migrated to the service schema."""
        store = self.va.store
        ensure_service_schema(store.db)
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
        return TokenManager(self.store, self.token_endpoint, account_id, **options)

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
