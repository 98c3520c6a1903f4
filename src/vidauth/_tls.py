"""The process's one TLS client context, which a command can start building early.

Loading the CA roots takes about 16 ms, and OpenSSL does it without holding the interpreter's
lock. Started on a thread while a command imports its modules (:func:`start`, called by the
CLI's ``will_connect``), it costs the start nothing on a second core. Until :func:`start` is
called, :func:`context` builds it in line. This module imports nothing heavy, so a command can
call it before anything else.
"""

from __future__ import annotations

import ssl
import threading
from concurrent.futures import Future

_lock = threading.Lock()
_built: Future[ssl.SSLContext] | None = None


def _build(into: Future[ssl.SSLContext]) -> None:
    try:
        import httpx

        # As httpx makes its default: certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR.
        into.set_result(httpx.create_ssl_context())
    except BaseException as exc:  # the caller of context() gets it, as if built in line
        into.set_exception(exc)


def _claim() -> Future[ssl.SSLContext] | None:
    """The new future to build into, or None when a build has begun already."""
    global _built
    with _lock:
        if _built is not None:
            return None
        _built = Future()
        return _built


def start() -> None:
    """Begin building the context on a thread (once per process; later calls do nothing).

    The thread is not a daemon: a command that ends before it waits the few milliseconds left,
    rather than leaving a thread in the middle of an import while the interpreter shuts down."""
    claimed = _claim()
    if claimed is not None:
        threading.Thread(target=_build, args=(claimed,), name="vidauth-tls").start()


def context() -> ssl.SSLContext:
    """The context: waits for :func:`start`'s thread, or builds it now if nothing started it.
    Raises what building it raised (a missing ``SSL_CERT_FILE``, say), in the caller's thread."""
    claimed = _claim()
    if claimed is not None:
        _build(claimed)
    assert _built is not None
    return _built.result()
