"""A sessionUpload's ``UploadTarget`` split into S3 endpoint, bucket and key prefix, and the
S3 client that talks to it (botocore's: boto3 on top of it would only add its import, s3transfer
included, on the way to the first byte).

``https://site/Panopto/Upload/<ID>`` → endpoint ``https://site/Panopto`` (an endpoint that
carries a path), bucket ``Upload``, prefix ``<ID>``; objects go to ``<ID>/<filename>``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vidauth.domain.signatures import SCHEMES
from vidauth.errors import RemoteServiceError, UsageError
from vidauth.http import check_url

#: Panopto ignores credentials; boto3 still wants some to sign with.
DUMMY_ACCESS_KEY = "vidauth"
DUMMY_SECRET_KEY = "vidauth-dummy-secret"  # noqa: S105 - not a secret: Panopto ignores it


@dataclass(frozen=True)
class UploadTarget:
    """Where a sessionUpload's objects go."""

    endpoint: str
    bucket: str
    prefix: str

    def key(self, filename: str) -> str:
        """The object key of ``filename``."""
        return f"{self.prefix}/{filename}"


def parse_upload_target(url: str) -> UploadTarget:
    """Split ``UploadTarget`` into endpoint (with its path), bucket and key prefix."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in {"http", "https"} or not parts.netloc or len(segments) < 2:
        raise RemoteServiceError(
            f"Panopto answered an unusable UploadTarget {url!r}: expected "
            "https://<site>/Panopto/Upload/<ID>; report this to your Panopto administrator"
        )
    check_url(url, "UploadTarget")
    path = "/" + "/".join(segments[:-2]) if len(segments) > 2 else ""
    endpoint = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return UploadTarget(endpoint=endpoint, bucket=segments[-2], prefix=segments[-1])


def s3_client(endpoint: str, *, signature: str = "s3", max_pool_connections: int = 10) -> Any:
    """A botocore S3 client for ``endpoint`` as Panopto needs it (:func:`client_options`)."""
    import botocore.session

    options = client_options(
        endpoint, signature=signature, max_pool_connections=max_pool_connections
    )
    # One botocore session for every client: it caches the parsed service models, so only the
    # first client pays for loading them. Sessions are not thread-safe; clients are created under
    # a lock.
    global _session
    with _session_lock:
        if _session is None:
            _session = botocore.session.Session()
            _session.register_component("data_loader", _s3_only_loader())
        return _session.create_client("s3", **options)


def _s3_only_loader() -> Any:
    """botocore's model loader (same search paths, same files), told that S3 is the only
    service it will be asked for. Before loading a model, botocore checks that the service
    is one it knows by listing every service folder of its data, some 460 of them: 20 to 30
    ms of each process's first client, on the way to the first byte."""
    from botocore.loaders import Loader

    class S3OnlyLoader(Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            return ["s3"]

    return S3OnlyLoader()


def client_options(
    endpoint: str, *, signature: str = "s3", max_pool_connections: int = 10
) -> dict[str, Any]:
    """The arguments of an S3 client for ``endpoint`` as Panopto needs it (botocore's
    ``create_client``, boto3's ``client``).

    Dummy credentials, path-style addressing, checksums only when required (Panopto rejects
    aws-chunked bodies), botocore's own retries off: every S3 call retries under the one
    policy (:mod:`vidauth.panopto.s3calls`).
    """
    import botocore
    from botocore.config import Config

    if signature not in SCHEMES:
        raise UsageError(
            f"signature scheme {signature!r}: choose one of {', '.join(SCHEMES)}",
            option="signature",
            value=signature,
            choices=list(SCHEMES),
        )
    signature_version: Any = botocore.UNSIGNED if signature == "unsigned" else signature
    config = Config(
        signature_version=signature_version,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max(10, max_pool_connections),
        connect_timeout=15,
        read_timeout=120,
        tcp_keepalive=True,
    )
    return {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": DUMMY_ACCESS_KEY,
        "aws_secret_access_key": DUMMY_SECRET_KEY,
        "config": config,
    }


_session: Any = None
_session_lock = threading.Lock()


def prewarm() -> None:
    """Import botocore and load the S3 models now (about 0.2 s), e.g. while a sessionUpload is
    being created, so that the first part does not wait for it."""
    s3_client("http://127.0.0.1:9/prewarm").close()


class S3Clients:
    """One S3 client per (endpoint, signature), created once and shared by threads."""

    def __init__(self, max_pool_connections: int) -> None:
        self.max_pool_connections = max_pool_connections
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: str, signature: str) -> Any:
        """The client for ``endpoint`` signing with ``signature`` (``s3``, ``s3v4``,
        ``unsigned``)."""
        with self._lock:
            client = self._clients.get((endpoint, signature))
            if client is None:
                client = s3_client(
                    endpoint,
                    signature=signature,
                    max_pool_connections=self.max_pool_connections,
                )
                self._clients[(endpoint, signature)] = client
            return client

    def close(self) -> None:
        """Close every client's connection pool."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
