"""S3 calls under the one retry policy, stoppable at every attempt, failing as coded errors.

boto3's own retries are off (:mod:`vidauth.panopto.target`): every S3 call — each part,
ListParts, the manifest, Create/Complete/Abort — retries here, with the same
:class:`~vidauth.retry.RetryPolicy` as the token and API calls (``VIDAUTH_RETRY_*``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from vidauth.errors import ErrorCode, RemoteServiceError, VidauthError
from vidauth.panopto.upload_types import UploadInterrupted
from vidauth.retry import RetryPolicy, parse_retry_after

#: Words by which an InvalidRequest / AccessDenied / InvalidArgument names the signature.
_SIGNATURE_WORDS = ("signature", "authorization", "aws4-hmac-sha256", "signing", "signed")
_ALWAYS_SIGNATURE = {"SignatureDoesNotMatch", "AuthorizationHeaderMalformed"}
_SOMETIMES_SIGNATURE = {"InvalidRequest", "AccessDenied", "InvalidArgument"}


def s3_status(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a botocore error; (0, exception name) otherwise."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status, str(exc.response.get("Error", {}).get("Code") or "")
    return 0, type(exc).__name__


#: 5xx answers that cannot change on retry: the target does not implement the call.
FINAL_5XX = frozenset({501, 505})


def retryable(exc: BaseException) -> bool:
    """A transient S3 failure: 5xx (but 501 NotImplemented and 505), 408, 429, SlowDown, a
    dropped connection."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status, code = s3_status(exc)
        if status in FINAL_5XX or code == "NotImplemented":
            return False
        return status >= 500 or status in (408, 429) or code in ("RequestTimeout", "SlowDown")
    return isinstance(exc, HTTPClientError | ConnectionError)


def signature_refusal(exc: BaseException, scheme: str) -> bool:
    """Whether ``exc`` refuses a request for the ``scheme`` it was signed with.

    ``SignatureDoesNotMatch`` always does; ``InvalidRequest``, ``AccessDenied`` and
    ``InvalidArgument`` when their message names the signature or the authorization
    mechanism; ``AccessDenied`` also when the request was unsigned (S3's answer to an
    anonymous request where a signature is required is a bare "Access Denied").
    """
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "").lower()
    if code in _ALWAYS_SIGNATURE:
        return True
    if code in _SOMETIMES_SIGNATURE and any(word in message for word in _SIGNATURE_WORDS):
        return True
    return code == "AccessDenied" and scheme == "unsigned"


def call_refused(exc: BaseException) -> bool:
    """Whether the target refuses the *call* itself (it does not offer it), not its signature:
    ``NotImplemented`` (501), ``MethodNotAllowed`` (405), or ``AccessDenied`` (403) whose
    message names no signature problem. That answer means "unknown": trust the store."""
    status, code = s3_status(exc)
    if status in (501, 405) or code in ("NotImplemented", "MethodNotAllowed"):
        return True
    # Judged as a signed request: a bare AccessDenied to a signed request is not about signing.
    return (status == 403 or code == "AccessDenied") and not signature_refusal(exc, "s3")


def retry_after(exc: BaseException) -> float | None:
    """The Retry-After of a botocore error response, when it had one."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}
    return parse_retry_after(headers.get("retry-after"))


def no_such_upload(exc: BaseException) -> bool:
    """The multipart upload (or sessionUpload) is gone at the target."""
    status, code = s3_status(exc)
    return status == 404 or code in ("NoSuchUpload", "NoSuchSessionUpload")


class Stop:
    """Why the calls of one file must stop: the engine's cancel event, or a sibling part's
    failure (``failed``)."""

    def __init__(self, cancel: threading.Event, record_id: int | None) -> None:
        self.cancel = cancel
        self.failed = threading.Event()
        self.record_id = record_id

    def check(self) -> None:
        """Raise UploadInterrupted when the upload must stop."""
        if self.cancel.is_set():
            raise UploadInterrupted(
                f"upload {self.record_id} stopped; it can be resumed",
                record_id=self.record_id,
            )
        if self.failed.is_set():
            raise UploadInterrupted("stopped after another part failed", record_id=self.record_id)

    def wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds unless stopped first."""
        if self.cancel.wait(delay) or self.failed.is_set():
            self.check()


class S3Caller:
    """Runs S3 calls with retries under ``policy``; failures become coded errors."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def call(
        self,
        stop: Stop,
        what: str,
        filename: str,
        call: Callable[..., Any],
        *,
        raw_errors: bool = False,
        passthrough: Callable[[BaseException], bool] | None = None,
        before: Callable[[], None] | None = None,
        **kw: Any,
    ) -> Any:
        """``call(**kw)``, retried on transient failures within the policy's bounds.

        ``before`` runs before every attempt (a token refresh); ``raw_errors`` lets a
        NoSuchUpload through as it is, for the caller to handle, and so does ``passthrough``
        any error it accepts (a signature refusal, for the negotiation).
        """
        budget = self.policy.start()
        while True:
            attempt = budget.begin()
            stop.check()
            if before is not None:
                before()
            try:
                return call(**kw)
            except Exception as exc:
                if isinstance(exc, VidauthError):
                    raise
                delay = budget.next_delay(retry_after(exc)) if retryable(exc) else None
                if delay is not None:
                    stop.wait(delay)
                    continue
                if (raw_errors and no_such_upload(exc)) or (passthrough and passthrough(exc)):
                    raise
                raise target_failure(what, filename, stop.record_id, exc, attempt) from None


def target_failure(
    what: str, filename: str, record_id: int | None, exc: BaseException, attempts: int
) -> RemoteServiceError:
    """An S3 failure after ``attempts`` as one line with its facts."""
    status, code = s3_status(exc)
    facts: dict[str, Any] = {
        "record_id": record_id,
        "file": filename,
        "attempts": attempts,
        "status": status or None,
        "target_error": code or None,
    }
    if status:
        return RemoteServiceError(
            f"{what} of {filename} failed: the upload target answered {code or 'an error'} "
            f"(HTTP {status}) after {attempts} attempt(s)",
            code=ErrorCode.UPLOAD_TARGET_FAILED,
            **facts,
        )
    return RemoteServiceError(
        f"{what} of {filename} failed: could not reach the upload target ({code}) after "
        f"{attempts} attempt(s)",
        code=ErrorCode.UPLOAD_TARGET_FAILED,
        **facts,
    )
