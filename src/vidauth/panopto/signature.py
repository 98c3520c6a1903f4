"""Which S3 signature scheme an upload host takes: asked for, remembered, or found out.

Panopto's upload sample has switched between SigV4 (``s3v4``) and SigV2 (``s3``), and other
clients send unsigned requests; a target may accept only one. With ``auto`` (the default), the
first S3 call of an upload is sent with the scheme remembered for its host (else ``s3``, what
Panopto's sample sends today); if the target refuses it *for its signature*, the other schemes
are tried once each, and the one that works is remembered in the store, so later uploads and
resumed ones start with it and send no refused request. The first negotiation for a host is
single-flight within the process: files uploaded together wait for it instead of each being
refused. An explicitly asked-for scheme is used as it is, never second-guessed: a refusal is
then an error (:data:`~vidauth.errors.ErrorCode.SIGNATURE_REFUSED`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from vidauth.domain.signatures import AUTO, CHOICES, SCHEMES
from vidauth.errors import ErrorCode, RemoteServiceError, UsageError
from vidauth.panopto.s3calls import s3_status, signature_refusal
from vidauth.store.signatures import SignatureHostStore

log = logging.getLogger("vidauth.upload")

T = TypeVar("T")


def check_choice(signature: str) -> str:
    """``signature`` if it is a known choice, else a UsageError naming the choices."""
    if signature not in CHOICES:
        raise UsageError(
            f"signature scheme {signature!r}: choose one of {', '.join(CHOICES)}",
            code=ErrorCode.USAGE,
            option="signature",
            value=signature,
            choices=list(CHOICES),
            signature=signature,
        )
    return signature


def upload_host(endpoint: str) -> str:
    """The key schemes are remembered by: the endpoint's ``host[:port]``, lower case."""
    return urlsplit(endpoint).netloc.lower()


def _refused_error(host: str, tried: list[str], exc: BaseException, *, explicit: bool) -> Any:
    status, code = s3_status(exc)
    if explicit:
        message = (
            f"the upload target {host} refused the {tried[0]} signature "
            f"({code or 'an error'}, HTTP {status})"
        )
    else:
        message = (
            f"the upload target {host} refused every S3 signature scheme "
            f"({', '.join(tried)}); the last answer was {code or 'an error'} (HTTP {status})"
        )
    return RemoteServiceError(
        message,
        code=ErrorCode.SIGNATURE_REFUSED,
        host=host,
        signature=tried[0] if explicit else None,
        tried=list(tried),
        explicit=explicit,
        status=status or None,
        target_error=code or None,
    )


class SignatureNegotiator:
    """The scheme per upload host for one engine (thread-safe).

    ``requested`` is ``auto`` or a scheme; ``store`` remembers what ``auto`` found (None: only
    for this process).
    """

    def __init__(self, requested: str, store: SignatureHostStore | None) -> None:
        self.requested = check_choice(requested)
        self.store = store
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._settled: dict[str, str] = {}
        #: Requests refused for their signature, per (host, scheme), in this process.
        self.refusals: dict[tuple[str, str], int] = {}

    @property
    def explicit(self) -> bool:
        """True when a scheme was asked for (flag or profile): it is never second-guessed."""
        return self.requested != AUTO

    def scheme(self, host: str) -> str:
        """The scheme to use for ``host`` now, without negotiating."""
        if self.explicit:
            return self.requested
        with self._lock:
            settled = self._settled.get(host)
        if settled is not None:
            return settled
        remembered = self.store.get(host) if self.store is not None else None
        return remembered if remembered in SCHEMES else SCHEMES[0]

    def first_call(self, host: str, call: Callable[[str], T]) -> tuple[T, str]:
        """Run an upload's first S3 call, ``call(scheme)``, on ``host``; answer its result and
        the scheme that worked.

        ``call`` must let a signature refusal through as the botocore error it is (other
        failures it may turn into vidauth errors). Explicit: one try, a refusal is an error.
        Auto: the host's scheme first, the others once each after a refusal.
        """
        if self.explicit:
            try:
                return call(self.requested), self.requested
            except Exception as exc:
                if signature_refusal(exc, self.requested):
                    self._count(host, self.requested)
                    raise _refused_error(host, [self.requested], exc, explicit=True) from None
                raise
        with self._lock:
            settled = self._settled.get(host)
        if settled is not None:  # known in this process: no need to queue behind anyone
            try:
                return call(settled), settled
            except Exception as exc:
                if not signature_refusal(exc, settled):
                    raise
                self._count(host, settled)
                with self._host_lock(host):  # the target changed its mind mid-run
                    with self._lock:
                        self._settled.pop(host, None)
                    return self._negotiate(host, call, refused=[settled], last=exc)
        with self._host_lock(host):
            with self._lock:
                settled = self._settled.get(host)
            if settled is None:
                return self._negotiate(host, call, refused=[], last=None)
        # settled while this call queued behind the negotiation: it goes as the others do, not
        # one at a time under the host's lock (twelve files' first calls would queue)
        return self.first_call(host, call)

    def _negotiate(
        self,
        host: str,
        call: Callable[[str], T],
        *,
        refused: list[str],
        last: BaseException | None,
    ) -> tuple[T, str]:
        with self._lock:
            settled = self._settled.get(host)
        remembered = self.store.get(host) if self.store is not None else None
        first = settled or (remembered if remembered in SCHEMES else None)
        order = [s for s in ([first] if first else []) + list(SCHEMES) if s not in refused]
        for scheme in dict.fromkeys(order):
            try:
                result = call(scheme)
            except Exception as exc:
                if not signature_refusal(exc, scheme):
                    raise
                self._count(host, scheme)
                refused.append(scheme)
                last = exc
                continue
            self._settle(host, scheme, refused, remembered)
            return result, scheme
        assert last is not None
        raise _refused_error(host, refused, last, explicit=False) from None

    def _settle(self, host: str, scheme: str, refused: list[str], remembered: str | None) -> None:
        with self._lock:
            first_time = host not in self._settled
            self._settled[host] = scheme
        if scheme != remembered and self.store is not None:
            self.store.remember(host, scheme)
        if refused:
            log.info(
                "S3 signature for %s: %s (%s refused); remembered for later uploads",
                host,
                scheme,
                ", ".join(refused),
            )
        elif first_time:
            how = "remembered from an earlier upload" if scheme == remembered else "accepted"
            log.info("S3 signature for %s: %s (%s)", host, scheme, how)

    def _count(self, host: str, scheme: str) -> None:
        with self._lock:
            self.refusals[(host, scheme)] = self.refusals.get((host, scheme), 0) + 1

    def _host_lock(self, host: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(host, threading.Lock())
