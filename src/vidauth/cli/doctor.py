"""``vidauth doctor``: is this profile ready to sign in? One check per thing that can be wrong.

Checks, in order: the configuration; each server's reachability and TLS certificate (a real
handshake with verification; plain http only on loopback, said as such), each server checked once,
before anything is asked of it; the discovery document (where the provider has one); the clock
against the server's ``Date``; whether the token endpoint accepts the client (a harmless
``authorization_code`` request with a bogus code: ``invalid_grant`` means the client
authenticated, ``invalid_client`` means it did not — never a real grant); the redirect URI and its
port (judged by binding it exactly as the sign-in's loopback listener will); and the token store
and its key. A server that cannot be reached is reported once, with its fix: the checks that need
it say "skipped" instead of repeating the failure. Nothing here prints a secret.
"""

from __future__ import annotations

import email.utils
import errno
import os
import socket
import ssl
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from vidauth._urls import is_loopback_host
from vidauth.config import Profile, Settings
from vidauth.errors import ConfigError, OAuthError, VidauthError
from vidauth.http import RetryPolicy, build_client, shared_ssl_context
from vidauth.logs import quiet_unless_verbose

OK, WARN, FAIL, INFO, SKIPPED = "ok", "warn", "fail", "info", "skipped"
CLOCK_SKEW_WARN_S = 60.0
PROBE_CODE = "vidauth-doctor-probe-not-a-real-code"
TLS_TIMEOUT_S = 10.0
_DISCOVERED = (
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "device_authorization_endpoint",
    "revocation_endpoint",
    "userinfo_endpoint",
)


@dataclass(frozen=True)
class Check:
    """One line of the checklist: what, how it went, details, and the fix when it failed."""

    name: str
    status: str
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return asdict(self)


def failed(checks: list[Check]) -> bool:
    """True when any check failed (the command then exits 2)."""
    return any(c.status == FAIL for c in checks)


def run_doctor(settings: Settings, *, probe_client: bool = True) -> list[Check]:
    """Run every check for ``settings``' selected profile."""
    checks: list[Check] = []
    try:
        profile = settings.profile()
    except VidauthError as exc:
        checks.append(Check("configuration", FAIL, exc.message, "fix the setting named above"))
        return checks
    where = profile.server or profile.endpoints.issuer or profile.endpoints.token_url
    checks.append(
        Check(
            "configuration",
            OK,
            f"profile {profile.name!r} ({profile.provider.title}) at {where}, "
            f"client {profile.client_id}, from {profile.source}",
        )
    )
    try:
        shared_ssl_context()
    except ConfigError as exc:
        checks.append(Check("CA roots", FAIL, exc.message, "correct SSL_CERT_FILE, or unset it"))
        return checks
    servers = _Servers(checks)
    policy = RetryPolicy(attempts=2, max_total=15.0)
    with quiet_unless_verbose(), build_client(policy, timeout=15.0) as client:
        discovery_url = profile.endpoints.discovery_url
        if discovery_url:
            blocked = servers.blocked(discovery_url)
            if blocked:
                checks.append(_skipped("discovery", blocked))
            else:
                profile, discovery_check = _discovery(profile, client)
                if discovery_check:
                    checks.append(discovery_check)
        origins = _origins(profile)
        for origin in origins:
            servers.blocked(origin)
        if not origins and not discovery_url:
            checks.append(
                Check("server", FAIL, "no endpoint to check", "set token_url / authorize_url")
            )
        clock_url = discovery_url or profile.endpoints.token_url
        if clock_url:
            blocked = servers.blocked(clock_url)
            checks.append(_skipped("clock", blocked) if blocked else _clock(profile, client))
        if probe_client:
            token_url = profile.endpoints.token_url
            blocked = servers.blocked(token_url) if token_url else None
            checks.append(
                _skipped("client", blocked) if blocked else _client_probe(profile, client)
            )
    checks.append(_redirect(profile))
    checks.append(_file_modes(settings))
    checks.append(_store(settings, profile))
    learned = _upload_hosts(settings)
    if learned is not None:
        checks.append(learned)
    return checks


class _Servers:
    """Each server (origin) is checked once, its row added when first needed; remembers why
    the checks that need a failed one are skipped."""

    def __init__(self, checks: list[Check]) -> None:
        self._checks = checks
        self._blocked: dict[str, str | None] = {}

    def blocked(self, url: str) -> str | None:
        """Why ``url``'s server cannot be asked anything (None when it can)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._blocked:
            check, reason = _connect(origin)
            self._checks.append(check)
            self._blocked[origin] = reason
        return self._blocked[origin]


def _skipped(name: str, reason: str) -> Check:
    return Check(name, SKIPPED, f"skipped: {reason}")


# -- the checks ----------------------------------------------------------------------------


def _discovery(profile: Profile, client: httpx.Client) -> tuple[Profile, Check | None]:
    from vidauth.oauth.oidc import discover, endpoints_from_discovery

    url = profile.endpoints.discovery_url
    if not url:
        return profile, None
    try:
        doc = discover(client, url)
    except VidauthError as exc:
        fatal = not profile.endpoints.token_url
        return profile, Check(
            "discovery",
            FAIL if fatal else WARN,
            exc.message,
            "check the profile's issuer/server and that the provider publishes "
            "/.well-known/openid-configuration",
        )
    issuer = doc.get("issuer")
    if profile.endpoints.issuer and issuer != profile.endpoints.issuer:
        return profile, Check(
            "discovery",
            FAIL,
            f"{url} names issuer {issuer!r}, expected {profile.endpoints.issuer!r}",
            "set the profile's issuer to exactly the provider's issuer",
        )
    endpoints = endpoints_from_discovery(doc, profile.endpoints)
    found = [k for k in _DISCOVERED if doc.get(k)]
    return replace(profile, endpoints=endpoints), Check(
        "discovery", OK, f"{url}: issuer {issuer}; has {', '.join(found)}"
    )


def _origins(profile: Profile) -> list[str]:
    seen: list[str] = []
    for url in (profile.endpoints.authorize_url, profile.endpoints.token_url):
        if url:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in seen:
                seen.append(origin)
    return seen


def tls_check(origin: str) -> Check:
    """Connect to ``origin``: for https a verified TLS handshake, for loopback http a TCP one."""
    return _connect(origin)[0]


def _connect(origin: str) -> tuple[Check, str | None]:
    """:func:`tls_check`'s row, and why nothing more can be asked of the server (or None)."""
    check = _connect_check(origin)
    if check.status != FAIL:
        return check, None
    if check.detail.startswith("cannot connect"):
        return check, "server unreachable"
    if check.detail.startswith("reachable; plain http"):
        return check, "plain http is refused for this server"
    return check, "the server's TLS failed"


def _connect_check(origin: str) -> Check:
    parts = urlsplit(origin)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = f"server {parts.netloc}"
    try:
        sock = socket.create_connection((host, port), timeout=TLS_TIMEOUT_S)
    except OSError as exc:
        return Check(
            name,
            FAIL,
            f"cannot connect to {host}:{port} ({exc.strerror or type(exc).__name__})",
            "check the server name, that it is running, and your network or proxy",
        )
    with sock:
        if parts.scheme != "https":
            note = "plain http on loopback (no TLS)" if is_loopback_host(host) else "plain http"
            if is_loopback_host(host):
                return Check(name, OK, f"reachable; {note}")
            return Check(
                name, FAIL, f"reachable; {note}", "use https: plain http only reaches loopback"
            )
        context = shared_ssl_context()
        try:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                cert = tls.getpeercert() or {}
                version = tls.version()
        except ssl.SSLCertVerificationError as exc:
            return Check(
                name,
                FAIL,
                f"TLS certificate not valid: {exc.verify_message or exc.reason}",
                "the server must present a valid certificate for this host name; behind a "
                "corporate proxy set SSL_CERT_FILE to its CA bundle",
            )
        except (ssl.SSLError, OSError) as exc:
            return Check(name, FAIL, f"TLS handshake failed ({exc})", "check the server's TLS")
    not_after = cert.get("notAfter")
    days = (ssl.cert_time_to_seconds(str(not_after)) - time.time()) / 86400 if not_after else None
    detail = f"TLS {version}, certificate valid" + (
        f" for {days:.0f} more days" if days is not None else ""
    )
    if days is not None and days < 14:
        return Check(name, WARN, detail, "the certificate expires soon; tell the server's admins")
    return Check(name, OK, detail)


def _clock(profile: Profile, client: httpx.Client) -> Check:
    url = profile.endpoints.discovery_url or profile.endpoints.token_url or ""
    try:
        response = client.get(url)
    except (httpx.HTTPError, VidauthError) as exc:
        return Check("clock", WARN, f"could not ask the server for its time ({exc})")
    date = response.headers.get("Date")
    if not date:
        return Check("clock", INFO, "the server sent no Date header; skew not checked")
    try:
        theirs = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Check("clock", INFO, f"unreadable Date header {date!r}")
    skew = time.time() - theirs
    detail = f"local clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the server"
    if abs(skew) > CLOCK_SKEW_WARN_S:
        return Check(
            "clock",
            WARN,
            detail,
            "synchronise the clock (NTP): token expiry and ID-token checks depend on it",
        )
    return Check("clock", OK, detail)


def _client_probe(profile: Profile, client: httpx.Client) -> Check:
    from vidauth.oauth.token_endpoint import TokenEndpoint

    if profile.client_secret is None:
        return Check("client", INFO, "public client (no secret): nothing to authenticate")
    if not profile.endpoints.token_url:
        return Check("client", FAIL, "no token endpoint", "set token_url or issuer")
    endpoint = TokenEndpoint(profile, client)
    try:
        endpoint.request(
            "authorization_code",
            retry="unsent",
            during="probing the token endpoint",
            code=PROBE_CODE,
            redirect_uri=profile.redirect_uri,
        )
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            return Check(
                "client",
                OK,
                f"the token endpoint accepted the client id and secret ({profile.client_auth})",
            )
        if exc.error == "invalid_client":
            return Check("client", FAIL, exc.message.split(": ", 1)[-1], _fix_invalid_client)
        if exc.error in ("unauthorized_client", "unsupported_grant_type"):
            return Check(
                "client",
                WARN,
                f"the client authenticated but may not use the authorization code grant "
                f"({exc.error})",
                "fine for client-credentials or password profiles; else allow the grant",
            )
        return Check(
            "client",
            WARN,
            f"inconclusive: the token endpoint answered {exc.error}",
            "try `vidauth login` and read its error",
        )
    except VidauthError as exc:
        return Check("client", FAIL, exc.message, "check token_url and the server")
    return Check(  # pragma: no cover - a server that accepts a bogus code
        "client", WARN, "the token endpoint accepted a bogus code", "tell the server's admins"
    )


_fix_invalid_client = (
    "check client_id and client_secret (and where the secret comes from), client_auth "
    "(client_secret_basic or client_secret_post), and that the client is confidential"
)


def _redirect(profile: Profile) -> Check:
    parts = urlsplit(profile.redirect_uri)
    host = parts.hostname or ""
    if not is_loopback_host(host):
        return Check(
            "redirect URI",
            INFO,
            f"{profile.redirect_uri} is not loopback: sign in with `vidauth login --no-browser` "
            "and paste the final address",
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    from vidauth.oauth.loopback import LoopbackListener

    # Bind exactly as `vidauth login` will (SO_REUSEADDR over the TIME_WAIT connections a
    # sign-in leaves behind, every loopback address of the host): free means it could bind.
    try:
        LoopbackListener(profile.redirect_uri, "vidauth-doctor-probe").start().stop()
    except ConfigError as exc:
        cause = exc.__context__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            holder = listener_of(port)
            return Check(
                "redirect URI",
                FAIL,
                f"{profile.redirect_uri}: port {port} is in use"
                + (f" by {holder}" if holder else " by another program"),
                f"stop the program listening on port {port}, or use another port in "
                "redirect_uri (and register it at the provider)",
            )
        return Check(
            "redirect URI",
            FAIL,
            exc.message,
            "use a loopback redirect URI this machine can listen on, e.g. "
            "http://localhost:9127/redirect",
        )
    return Check(
        "redirect URI",
        OK,
        f"{profile.redirect_uri} (register exactly this at the provider); port {port} is free",
    )


def listener_of(port: int) -> str | None:
    """``"name (pid N)"`` of a process listening on TCP ``port``, where this machine tells
    (Linux's /proc, for processes this user may see); else None."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            listening = len(fields) > 9 and fields[3] == "0A"  # 0A: LISTEN
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    try:
        processes = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    except OSError:
        return None
    for process in processes:
        try:
            for fd in (process / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    name = (process / "comm").read_text().strip()
                    return f"{name} (pid {process.name})"
        except OSError:
            continue
    return None


def _file_modes(settings: Settings) -> Check:
    from vidauth.store.db import file_mode_problems, sqlite_path_of

    path = sqlite_path_of(settings.database_url)
    problems = file_mode_problems(settings.home, path)
    if problems:
        fix = f"chmod 700 {settings.home}" + (f" and chmod 600 {path}*" if path else "")
        return Check("file modes", WARN, "; ".join(problems), fix + " (vidauth tightens them too)")
    return Check("file modes", OK, f"{settings.home} and the store are private to you")


def _store(settings: Settings, profile: Profile) -> Check:
    from vidauth.store import Database, TokenStore

    url = settings.database_url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not os.path.exists(path):
            return Check("store", OK, f"no store yet at {path}; created at the first sign-in")
    db = Database(url)
    try:
        store = TokenStore.open(db, settings.home, settings.secret_keys)
        accounts = store.list_accounts(profile.key)
        for account in accounts:
            store.load_tokens(account.id)
    except VidauthError as exc:
        return Check("store", FAIL, exc.message, "see the message; `vidauth logout --all` resets")
    except Exception as exc:
        return Check(
            "store",
            FAIL,
            f"cannot open the store ({type(exc).__name__})",
            "check VIDAUTH_DATABASE_URL and its permissions",
        )
    finally:
        db.dispose()
    where = url.split("@")[-1] if "@" in url else url
    return Check(
        "store", OK, f"{where}: readable, key works, {len(accounts)} account(s) for this profile"
    )


def _upload_hosts(settings: Settings) -> Check | None:
    """What uploads learned about each upload host: the S3 signature it takes and the optional
    calls it answers or refuses (None when there is no store or nothing was learned)."""
    from vidauth.store import Database
    from vidauth.store.host_calls import HostCallStore
    from vidauth.store.signatures import SignatureHostStore

    url = settings.database_url
    if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///") :]):
        return None
    db = Database(url)
    try:
        signatures = SignatureHostStore(db).all()
        calls = HostCallStore(db).all()
    except Exception:
        return None  # the store check says what is wrong with it
    finally:
        db.dispose()
    hosts: dict[str, list[str]] = {}
    for host, signature in sorted(signatures.items()):
        hosts.setdefault(host, []).append(f"signature {signature}")
    for host, call, answer, detail in calls:
        said = "answered" if answer == "ok" else f"refused ({detail})" if detail else "refused"
        hosts.setdefault(host, []).append(f"{call} {said}")
    if not hosts:
        return None
    detail = "; ".join(f"{host}: {', '.join(facts)}" for host, facts in sorted(hosts.items()))
    return Check("upload hosts", INFO, detail)
