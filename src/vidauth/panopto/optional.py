"""Optional S3 calls, tried at most once per upload host and remembered.

What every public client of Panopto's upload target uses is CreateMultipartUpload, UploadPart,
CompleteMultipartUpload and AbortMultipartUpload; nothing vidauth needs goes beyond them. A call
that only helps (ListParts, to cross-check the parts the store recorded) is tried once per
upload host: if the host refuses it (:func:`~vidauth.panopto.s3calls.call_refused`) that is
remembered in the store, the way the signature scheme is, and never asked again; ``vidauth
doctor`` shows what was learned.
"""

from __future__ import annotations

import logging
import threading

from vidauth.panopto.s3calls import s3_status
from vidauth.store.host_calls import OK, REFUSED, HostCallStore

LIST_PARTS = "ListParts"

log = logging.getLogger("vidauth.upload")


class OptionalCalls:
    """Which optional calls each upload host answers (thread-safe; ``store`` None: only for
    this process)."""

    def __init__(self, store: HostCallStore | None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], str] = {}

    def answer(self, host: str, call: str) -> str | None:
        """``ok``, ``refused`` or None (not tried yet) for ``call`` on ``host``."""
        with self._lock:
            known = self._known.get((host, call))
        if known is None and self.store is not None:
            known = self.store.get(host, call)
            if known is not None:
                with self._lock:
                    self._known[(host, call)] = known
        return known

    def may_try(self, host: str, call: str) -> bool:
        """False once ``host`` has refused ``call``."""
        return self.answer(host, call) != REFUSED

    def worked(self, host: str, call: str) -> None:
        """``host`` answered ``call``."""
        self._set(host, call, OK, None)

    def refused(self, host: str, call: str, exc: BaseException) -> None:
        """``host`` refused ``call`` with ``exc``: never asked again."""
        status, code = s3_status(exc)
        detail = f"{code or 'an error'} (HTTP {status})"
        log.info("upload target %s refused %s: %s; not asked again", host, call, detail)
        self._set(host, call, REFUSED, detail)

    def _set(self, host: str, call: str, answer: str, detail: str | None) -> None:
        with self._lock:
            before = self._known.get((host, call))
            self._known[(host, call)] = answer
        if before != answer and self.store is not None:
            self.store.remember(host, call, answer, detail)
