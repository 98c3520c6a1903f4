"""Signature negotiation as a unit: a modelled target, a real store (SQLite)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from vidauth.errors import ErrorCode, RemoteServiceError, UsageError
from vidauth.panopto.s3calls import signature_refusal
from vidauth.panopto.signature import SignatureNegotiator, check_choice, upload_host
from vidauth.store import Database
from vidauth.store.signatures import SignatureHostStore
from vidauth_sandbox.s3 import refusal_for

HOST = "127.0.0.1:9128"


def _error(status: int, code: str, message: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "CreateMultipartUpload",
    )


class Target:
    """Accepts one scheme and answers the others as the sandbox (and S3) does."""

    def __init__(self, accepts: str) -> None:
        self.accepts = accepts
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, scheme: str) -> str:
        with self.lock:
            self.sent.append(scheme)
        refusal = refusal_for(self.accepts, scheme)
        if refusal is not None:
            raise _error(refusal.status, refusal.code, refusal.message)
        return f"upload-id-{scheme}"

    def refused(self) -> list[str]:
        return [s for s in self.sent if s != self.accepts]


@pytest.fixture
def store(tmp_path: Path) -> SignatureHostStore:
    return SignatureHostStore(Database(f"sqlite:///{tmp_path / 'x.db'}"))


@pytest.mark.parametrize(
    ("accepts", "used"),
    [(a, u) for a in ("s3v4", "s3", "unsigned") for u in ("s3v4", "s3", "unsigned") if a != u],
)
def test_every_sandbox_refusal_is_recognised(accepts: str, used: str) -> None:
    refusal = refusal_for(accepts, used)
    assert refusal is not None
    assert signature_refusal(_error(refusal.status, refusal.code, refusal.message), used)


def test_other_refusals_are_not_signature_refusals() -> None:
    assert not signature_refusal(_error(403, "AccessDenied", "Access Denied"), "s3")
    assert not signature_refusal(_error(400, "InvalidRequest", "Part number too big"), "s3v4")
    assert not signature_refusal(_error(404, "NoSuchUpload", "gone"), "unsigned")
    assert not signature_refusal(ValueError("Signature"), "s3")
    assert signature_refusal(_error(400, "AuthorizationHeaderMalformed", "region"), "s3v4")


@pytest.mark.parametrize("accepts", ["s3v4", "s3", "unsigned"])
def test_auto_finds_the_scheme_once_and_later_uploads_start_with_it(
    accepts: str, store: SignatureHostStore
) -> None:
    target = Target(accepts)
    first = SignatureNegotiator("auto", store)
    assert first.first_call(HOST, target) == (f"upload-id-{accepts}", accepts)
    assert len(target.refused()) == len(set(target.refused()))  # each scheme refused once at most
    assert store.get(HOST) == accepts
    # another upload in this process, and another process: no refused request at all
    before = len(target.refused())
    assert first.first_call(HOST, target)[1] == accepts
    later = SignatureNegotiator("auto", store)
    assert later.scheme(HOST) == accepts
    assert later.first_call(HOST, target)[1] == accepts
    assert len(target.refused()) == before


def test_auto_logs_the_choice_once(
    store: SignatureHostStore, caplog: pytest.LogCaptureFixture
) -> None:
    target = Target("unsigned")
    negotiator = SignatureNegotiator("auto", store)
    with caplog.at_level("INFO", logger="vidauth.upload"):
        for _ in range(3):
            negotiator.first_call(HOST, target)
    lines = [r.getMessage() for r in caplog.records if "S3 signature" in r.getMessage()]
    assert lines == [
        f"S3 signature for {HOST}: unsigned (s3, s3v4 refused); remembered for later uploads"
    ]


def test_files_starting_together_are_refused_once(store: SignatureHostStore) -> None:
    target = Target("s3v4")
    negotiator = SignatureNegotiator("auto", store)
    barrier = threading.Barrier(6)
    schemes: list[str] = []

    def upload() -> None:
        barrier.wait()
        schemes.append(negotiator.first_call(HOST, target)[1])

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert schemes == ["s3v4"] * 6
    assert target.refused() == ["s3"]
    assert negotiator.refusals == {(HOST, "s3"): 1}


def test_a_target_that_changes_scheme_is_followed(store: SignatureHostStore) -> None:
    target = Target("s3v4")
    negotiator = SignatureNegotiator("auto", store)
    negotiator.first_call(HOST, target)
    target.accepts, target.sent = "unsigned", []
    assert negotiator.first_call(HOST, target)[1] == "unsigned"
    assert target.sent == ["s3v4", "s3", "unsigned"]
    assert store.get(HOST) == "unsigned"


def test_auto_gives_up_after_one_try_of_each(store: SignatureHostStore) -> None:
    sent: list[str] = []

    def refuses_all(scheme: str) -> str:
        sent.append(scheme)
        raise _error(403, "SignatureDoesNotMatch", "The request signature we calculated …")

    with pytest.raises(RemoteServiceError) as failed:
        SignatureNegotiator("auto", store).first_call(HOST, refuses_all)
    assert sent == ["s3", "s3v4", "unsigned"]
    assert failed.value.code == ErrorCode.SIGNATURE_REFUSED
    assert failed.value.facts["tried"] == ["s3", "s3v4", "unsigned"]
    assert failed.value.facts["explicit"] is False
    assert str(failed.value) == (
        f"the upload target {HOST} refused every S3 signature scheme (s3, s3v4, unsigned); "
        "the last answer was SignatureDoesNotMatch (HTTP 403)"
    )
    assert store.get(HOST) is None


def test_a_failure_that_is_not_about_the_signature_stops_the_negotiation(
    store: SignatureHostStore,
) -> None:
    sent: list[str] = []

    def closed(scheme: str) -> str:
        sent.append(scheme)
        raise _error(409, "InvalidRequest", "sessionUpload is in State 2")

    with pytest.raises(ClientError):
        SignatureNegotiator("auto", store).first_call(HOST, closed)
    assert sent == ["s3"]


def test_an_explicit_scheme_is_never_second_guessed(store: SignatureHostStore) -> None:
    store.remember(HOST, "s3")
    target = Target("s3")
    negotiator = SignatureNegotiator("s3v4", store)
    assert negotiator.scheme(HOST) == "s3v4"
    with pytest.raises(RemoteServiceError) as failed:
        negotiator.first_call(HOST, target)
    assert target.sent == ["s3v4"]
    assert failed.value.code == ErrorCode.SIGNATURE_REFUSED
    assert failed.value.facts["explicit"] is True and failed.value.facts["signature"] == "s3v4"
    assert str(failed.value) == (
        f"the upload target {HOST} refused the s3v4 signature (SignatureDoesNotMatch, HTTP 403)"
    )
    assert store.get(HOST) == "s3"  # what auto found is left alone


def test_choices_and_hosts() -> None:
    assert check_choice("auto") == "auto"
    with pytest.raises(UsageError, match="choose one of auto, s3, s3v4, unsigned"):
        check_choice("v4")
    assert upload_host("https://Deakin.AU.panopto.com/Panopto") == "deakin.au.panopto.com"
    assert upload_host("http://127.0.0.1:9128/Panopto") == "127.0.0.1:9128"
