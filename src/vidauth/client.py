"""The library's front door: one object that ties settings, store, HTTP and flows together.

>>> va = Vidauth.from_env()                          # doctest: +SKIP
>>> account = va.login(open_browser=webbrowser.open)  # doctest: +SKIP
>>> with va.api_client() as api:                     # doctest: +SKIP
...     api.get("/Panopto/api/v1/folders/search", params={"searchQuery": "SIT"})
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from vidauth.config import Profile, Secret, Settings, load_settings
from vidauth.errors import ErrorCode, OAuthError, SignInRequired, UsageError
from vidauth.http import BearerAuth, RetryPolicy, build_client
from vidauth.oauth.manager import Regrant, TokenManager
from vidauth.oauth.token_endpoint import TokenEndpoint
from vidauth.store import AccountInfo, Database, TokenSet, TokenStore
from vidauth.store.discovery_cache import StoreDiscoveryCache

if TYPE_CHECKING:  # sign-in's modules (JOSE, the loopback server) load only when signing in
    from vidauth.oauth.device import DeviceAuthorization


class Vidauth:
    """Sign-in, tokens and API clients for one profile."""

    def __init__(
        self,
        settings: Settings,
        profile: Profile | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._profile = profile
        self._transport = transport
        self.regrant: Regrant | None = None

    @classmethod
    def from_env(cls, **flags: Any) -> Vidauth:
        """Settings from flags > environment > .env."""
        return cls(load_settings(**flags))

    @cached_property
    def profile(self) -> Profile:
        """The selected profile (validated; endpoints from discovery where it has an issuer)."""
        from dataclasses import replace

        from vidauth.oauth.discovery import resolve_endpoints

        profile = self._profile or self.settings.profile()
        if profile.endpoints.discovery_url:
            endpoints = resolve_endpoints(profile, self.http, self.discovery_cache)
            profile = replace(profile, endpoints=endpoints)
        return profile

    @cached_property
    def discovery_cache(self) -> StoreDiscoveryCache:
        """Discovery documents and JWKS, kept in the store with their expiry."""
        return StoreDiscoveryCache(self.store.db)

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """The retry bounds from the settings."""
        return RetryPolicy.from_settings(self.settings.retry)

    @cached_property
    def http(self) -> httpx.Client:
        """Plain client (token endpoint, discovery) with retries."""
        return build_client(self.retry_policy, transport=self._transport)

    @cached_property
    def store(self) -> TokenStore:
        """The token store (migrated, key resolved)."""
        db = Database(self.settings.database_url)
        return TokenStore.open(db, self.settings.home, self.settings.secret_keys)

    @cached_property
    def token_endpoint(self) -> TokenEndpoint:
        """The profile's token endpoint."""
        return TokenEndpoint(self.profile, self.http, self.retry_policy)

    def close(self) -> None:
        """Release HTTP connections and database connections."""
        if "http" in self.__dict__:
            self.http.close()
        if "store" in self.__dict__:
            self.store.db.dispose()

    def __enter__(self) -> Vidauth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sign-in -----------------------------------------------------------------------

    def login(
        self,
        *,
        open_browser: Callable[[str], object] | None,
        announce: Callable[[str], None],
        timeout: float = 300.0,
        paste_from: TextIO | None = None,
    ) -> AccountInfo:
        """The interactive authorization-code sign-in; returns the stored account."""
        from vidauth.oauth.authorization_code import AuthorizationRequest, receive_redirect

        request = AuthorizationRequest.create(self.profile, self.sign_in_scope())
        code = receive_redirect(
            request,
            open_browser=open_browser,
            announce=announce,
            timeout=timeout,
            paste_from=paste_from,
        )
        tokens = self.token_endpoint.exchange_code(
            code, request.redirect_uri, request.code_verifier
        )
        return self.save(tokens, nonce=request.nonce, grant_type="authorization_code")

    def sign_in_scope(self) -> str:
        """The scope a person's sign-in asks for: the profile's, plus ``profile email`` where
        the provider lists them (:func:`vidauth.oauth.identity.sign_in_scope`)."""
        from vidauth.oauth.identity import sign_in_scope

        return sign_in_scope(self.profile, self.http, self.discovery_cache)

    def login_client_credentials(self) -> AccountInfo:
        """Sign the application itself in (client credentials); renewed automatically."""
        from vidauth.oauth import grants

        tokens = grants.client_credentials(self.token_endpoint, self.profile)
        return self.store.save_grant(
            profile_key=self.profile.key,
            subject=grants.client_subject(self.profile),
            username=None,
            server=self.profile.server,
            client_id=self.profile.client_id,
            tokens=tokens,
            grant_type=grants.CLIENT_CREDENTIALS,
        )

    def login_password(
        self,
        username: str,
        password: Secret | None = None,
        *,
        application_key: Secret | None = None,
    ) -> AccountInfo:
        """Resource-owner password sign-in, or with ``application_key`` Panopto's ID-provider
        grant (renewed automatically from the profile's application key reference)."""
        from vidauth.oauth import grants

        if application_key is not None:
            tokens = grants.id_provider(
                self.token_endpoint, self.profile, username, application_key
            )
            return self.save(
                tokens, nonce=None, grant_type=grants.ID_PROVIDER, username=username.strip()
            )
        if password is None:
            raise UsageError("a password sign-in needs a password (or an application key)")
        scope = self.sign_in_scope()
        try:
            tokens = grants.password(self.token_endpoint, self.profile, username, password, scope)
        except OAuthError as exc:
            # IdentityServer's answer to a client not allowed offline access: ask once more
            # without it (the grant then has no refresh token and ends with its access token).
            asked = scope.split()
            if exc.error != "invalid_scope" or "offline_access" not in asked:
                raise
            narrower = " ".join(s for s in asked if s != "offline_access")
            tokens = grants.password(
                self.token_endpoint, self.profile, username, password, narrower
            )
        return self.save(tokens, nonce=None, grant_type=grants.PASSWORD)

    def login_device(
        self,
        announce: Callable[[DeviceAuthorization], None],
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> AccountInfo:
        """The device authorization grant (RFC 8628): ``announce`` shows the code and URL."""
        from vidauth.oauth import device

        started = device.start(self.token_endpoint, self.profile)
        announce(started)
        tokens = device.poll(self.token_endpoint, started, sleep=sleep or time.sleep)
        return self.save(tokens, nonce=None, grant_type="device_code")

    def save(
        self,
        tokens: TokenSet,
        *,
        nonce: str | None,
        grant_type: str,
        username: str | None = None,
    ) -> AccountInfo:
        """Identify the grant's owner (validating any ID token) and store it.

        ``username`` replaces the name shown (the ID-provider grant keeps the login name, which
        it needs to renew the grant).
        """
        from vidauth.oauth.identity import identify

        who = identify(self.profile, tokens, self.http, nonce, self.discovery_cache)
        return self.store.save_grant(
            profile_key=self.profile.key,
            subject=who.subject,
            username=username or who.username,
            server=self.profile.server,
            client_id=self.profile.client_id,
            tokens=tokens,
            grant_type=grant_type,
        )

    # -- tokens --------------------------------------------------------------------------

    def account(self, subject: str | None = None) -> AccountInfo:
        """The signed-in account (``subject`` or name), else the most recent sign-in."""
        info = self.store.find_account(self.profile.key, subject)
        if info is None:
            if subject:
                raise UsageError(
                    f"no signed-in account {subject!r} for this profile",
                    code=ErrorCode.ACCOUNT_NOT_FOUND,
                    account=subject,
                )
            raise SignInRequired("not signed in", profile=self.profile.name)
        return info

    def token_manager(self, subject: str | None = None, **options: Any) -> TokenManager:
        """A TokenManager for the account (with the regrant its grant type allows)."""
        from vidauth.oauth.grants import regrant_for

        info = self.account(subject)
        regrant = self.regrant or regrant_for(
            info.grant_type, self.token_endpoint, self.profile, info.username
        )
        return TokenManager(self.store, self.token_endpoint, info.id, regrant=regrant, **options)

    def api_client(
        self, subject: str | None = None, *, min_validity: float = 300.0, **options: Any
    ) -> httpx.Client:
        """A client for the platform's API that sends fresh bearer tokens."""
        auth = BearerAuth(self.token_manager(subject), min_validity=min_validity)
        return build_client(
            self.retry_policy,
            auth=auth,
            base_url=self.profile.api_base,
            transport=self._transport,
            **options,
        )

    def logout(self, subject: str | None = None, *, revoke: bool = False) -> AccountInfo:
        """Delete the account's local tokens; ``revoke`` also revokes them at the server."""
        info = self.account(subject)
        if revoke:
            tokens = self.store.load_tokens(info.id)
            if tokens is not None:
                if tokens.refresh_token:
                    self.token_endpoint.revoke(tokens.refresh_token, "refresh_token")
                self.token_endpoint.revoke(tokens.access_token, "access_token")
                self.store.audit(info.id, "revoked")
        self.store.delete_account(info.id)
        return info
