"""The sandbox's S3 upload target, driven by real boto3 clients over loopback."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from fastapi import FastAPI

from tests.helpers.processes import stop_or_explain
from vidauth._serving import BackgroundServer
from vidauth_sandbox.panopto_api import PanoptoSandbox, PanoptoSandboxOptions
from vidauth_sandbox.s3 import MAX_PART_SIZE, OPTIONAL_CALLS, MiB, TokenBucket

TOKEN = "alice-token"
FOLDER = PanoptoSandbox.folder_id("Sandbox Courses", "SIT102 Labs")
SIGNATURES: list[Any] = ["s3", "s3v4", botocore.UNSIGNED]


@dataclass
class Target:
    sandbox: PanoptoSandbox
    url: str

    def new_upload(self) -> str:
        """A fresh sessionUpload; answers its ID (the key prefix)."""
        response = httpx.post(
            f"{self.url}/Panopto/PublicAPI/REST/sessionUpload",
            json={"FolderId": FOLDER},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["ID"])

    def client(self, signature: Any = "s3v4") -> Any:
        config = Config(
            signature_version=signature,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
        )
        return boto3.client(
            "s3",
            endpoint_url=f"{self.url}/Panopto",
            aws_access_key_id="dummy-key",
            aws_secret_access_key="dummy-secret",
            region_name="us-east-1",
            config=config,
        )


def serve(tmp_path: Path, **options: Any) -> Iterator[Target]:
    """A target for these tests of S3 behaviour: they read back what they sent, so the optional
    calls (PutObject, GetObject, HeadObject, ListParts) are allowed unless a test says
    otherwise; the sandbox's default refuses them (``test_strict_by_default``)."""
    options.setdefault("s3_allow", frozenset(OPTIONAL_CALLS))
    sandbox = PanoptoSandbox(
        PanoptoSandboxOptions(storage_dir=tmp_path / "uploads", **options),
        authenticate=lambda token: "alice" if token == TOKEN else None,
    )
    app = FastAPI()
    app.include_router(sandbox.router())
    with BackgroundServer(app) as server:
        yield Target(sandbox, server.url)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    yield from serve(tmp_path)


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


@pytest.mark.parametrize("signature", SIGNATURES, ids=["s3", "s3v4", "unsigned"])
def test_multipart_upload_roundtrip(target: Target, signature: Any) -> None:
    s3 = target.client(signature)
    prefix = target.new_upload()
    key = f"{prefix}/lecture one.mp4"
    chunks = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1 * MiB)]
    created = s3.create_multipart_upload(Bucket="Upload", Key=key)
    upload_id = created["UploadId"]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        answer = s3.upload_part(
            Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
        )
        assert answer["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"'  # noqa: S324
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    assert target.sandbox.bytes_received == sum(map(len, chunks))

    listed = s3.list_parts(Bucket="Upload", Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == [
        (p["PartNumber"], len(c), p["ETag"]) for p, c in zip(parts, chunks, strict=True)
    ]
    assert listed["IsTruncated"] is False
    first = s3.list_parts(Bucket="Upload", Key=key, UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2] and first["IsTruncated"] is True
    rest = s3.list_parts(
        Bucket="Upload",
        Key=key,
        UploadId=upload_id,
        PartNumberMarker=first["NextPartNumberMarker"],
    )
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and rest["IsTruncated"] is False

    done = s3.complete_multipart_upload(
        Bucket="Upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ETag"].endswith('-3"')
    stored = target.sandbox.object_path(prefix, "lecture one.mp4")
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == expected
    head = s3.head_object(Bucket="Upload", Key=key)
    assert head["ContentLength"] == sum(map(len, chunks)) and head["ETag"] == done["ETag"]
    body = s3.get_object(Bucket="Upload", Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == expected

    s3.put_object(Bucket="Upload", Key=f"{prefix}/manifest.xml", Body=b"<Session/>")
    assert target.sandbox.object_path(prefix, "manifest.xml").read_bytes() == b"<Session/>"


@pytest.mark.parametrize("signature", SIGNATURES, ids=["s3", "s3v4", "unsigned"])
def test_limits_and_abort(target: Target, signature: Any) -> None:
    s3 = target.client(signature)
    prefix = target.new_upload()
    key = f"{prefix}/big.mp4"
    upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]

    with pytest.raises(ClientError) as too_large:
        s3.upload_part(
            Bucket="Upload",
            Key=key,
            UploadId=upload_id,
            PartNumber=1,
            Body=b"\0" * (MAX_PART_SIZE + 1),
        )
    assert error_code(too_large) == "EntityTooLarge"
    assert target.sandbox.bytes_received == 0

    with pytest.raises(ClientError) as bad_number:
        s3.upload_part(Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=10001, Body=b"x")
    assert error_code(bad_number) == "InvalidArgument"

    small = [b"a" * 1000, b"b" * 1000]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=n, Body=data
            )["ETag"],
        }
        for n, data in enumerate(small, start=1)
    ]
    with pytest.raises(ClientError) as too_small:
        s3.complete_multipart_upload(
            Bucket="Upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    assert error_code(too_small) == "EntityTooSmall"
    wrong = [{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]
    with pytest.raises(ClientError) as bad_etag:
        s3.complete_multipart_upload(
            Bucket="Upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": wrong}
        )
    assert error_code(bad_etag) == "InvalidPart"

    s3.abort_multipart_upload(Bucket="Upload", Key=key, UploadId=upload_id)
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket="Upload", Key=key, UploadId=upload_id)
    assert error_code(gone) == "NoSuchUpload"
    assert not target.sandbox.object_path(prefix, "big.mp4").exists()


@pytest.mark.parametrize("signature", SIGNATURES, ids=["s3", "s3v4", "unsigned"])
def test_injected_part_failure(target: Target, signature: Any) -> None:
    s3 = target.client(signature)
    prefix = target.new_upload()
    key = f"{prefix}/v.mp4"
    upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
    target.sandbox.fail_parts(1, status=503)
    with pytest.raises(ClientError) as failed:
        s3.upload_part(Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 10)
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert target.sandbox.bytes_received == 0
    s3.upload_part(Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 10)
    assert target.sandbox.bytes_received == 10
    assert target.sandbox.upload_part_requests == 2
    listed = s3.list_parts(Bucket="Upload", Key=key, UploadId=upload_id)
    assert [p["Size"] for p in listed["Parts"]] == [10]


def test_unknown_or_closed_prefix(target: Target) -> None:
    s3 = target.client()
    with pytest.raises(ClientError) as unknown:
        s3.create_multipart_upload(Bucket="Upload", Key="no-such-upload/v.mp4")
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as escape:
        s3.put_object(Bucket="Upload", Key=f"{target.new_upload()}/../../etc/x", Body=b"x")
    assert escape.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 404)


def test_content_md5_is_verified(target: Target) -> None:
    prefix = target.new_upload()
    url = f"{target.url}/Panopto/Upload/{prefix}/m.xml"
    good = "XUFAKrxLKna5cZ2REBfFkg=="  # md5("hello")
    assert httpx.put(url, content=b"hello", headers={"Content-MD5": good}).status_code == 200
    bad = httpx.put(url, content=b"hellO", headers={"Content-MD5": good})
    assert bad.status_code == 400 and "<Code>BadDigest</Code>" in bad.text


def test_bandwidth_knob_caps_throughput(tmp_path: Path) -> None:
    for target in serve(tmp_path, s3_bandwidth=4e6):
        s3 = target.client()
        prefix = target.new_upload()
        started = time.monotonic()
        s3.put_object(Bucket="Upload", Key=f"{prefix}/a.bin", Body=os.urandom(2_000_000))
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 5, elapsed


def test_latency_knob(tmp_path: Path) -> None:
    for target in serve(tmp_path, s3_latency=0.2):
        s3 = target.client()
        prefix = target.new_upload()
        started = time.monotonic()
        s3.put_object(Bucket="Upload", Key=f"{prefix}/a.bin", Body=b"x")
        assert time.monotonic() - started >= 0.2


def test_token_bucket_is_shared() -> None:
    bucket = TokenBucket(1000.0)
    waits = [bucket.reserve(100) for _ in range(10)]
    assert waits[-1] == pytest.approx(1.0, abs=0.05)


def test_part_body_is_streamed_not_buffered(target: Target) -> None:
    """A 20 MiB part sent chunked never makes the server hold more than a few MiB."""
    s3 = target.client()
    prefix = target.new_upload()
    key = f"{prefix}/stream.bin"
    upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
    block = os.urandom(64 * 1024)
    count = 20 * MiB // len(block)

    def body() -> Iterator[bytes]:
        for _ in range(count):
            yield block

    tracemalloc.start()
    try:
        response = httpx.put(
            f"{target.url}/Panopto/Upload/{key}",
            params={"partNumber": 1, "uploadId": upload_id},
            content=body(),
            timeout=30,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert target.sandbox.bytes_received == count * len(block)
    assert peak < 8 * MiB, peak


def test_boto3_retries_an_injected_failure(target: Target) -> None:
    """With boto3's own retries, an injected 500 costs one extra request and nothing else."""
    config = Config(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=f"{target.url}/Panopto",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
        config=config,
    )
    prefix = target.new_upload()
    key = f"{prefix}/v.mp4"
    upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
    target.sandbox.fail_parts(1)
    s3.upload_part(Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=1, Body=b"y" * 100)
    assert target.sandbox.upload_part_requests == 2
    assert target.sandbox.bytes_received == 100


def test_refused_bodies_leave_the_connection_usable(target: Target) -> None:
    """Without Expect: 100-continue, a refused body is drained and the connection reused."""
    prefix = target.new_upload()
    created = httpx.post(f"{target.url}/Panopto/Upload/{prefix}/v.mp4?uploads")
    upload_id = created.text.split("<UploadId>")[1].split("</UploadId>")[0]
    part_url = f"{target.url}/Panopto/Upload/{prefix}/v.mp4"
    params = {"partNumber": "1", "uploadId": upload_id}
    block = b"z" * (1024 * 1024)

    def oversized() -> Iterator[bytes]:  # chunked: no Content-Length to refuse early
        for _ in range(MAX_PART_SIZE // len(block) + 1):
            yield block

    with httpx.Client(timeout=30) as http:
        target.sandbox.fail_parts(1, 500)
        failed = http.put(part_url, params=params, content=b"a" * 5000)
        assert failed.status_code == 500 and "<Code>InternalError</Code>" in failed.text
        too_big = http.put(part_url, params=params, content=oversized())
        assert too_big.status_code == 400 and "EntityTooLarge" in too_big.text
        ok = http.put(part_url, params=params, content=b"a" * 5000)
        assert ok.status_code == 200
        assert ok.headers["ETag"] == f'"{hashlib.md5(b"a" * 5000).hexdigest()}"'  # noqa: S324
    assert target.sandbox.bytes_received == 5000


# -- the signature knob: a target that accepts one scheme and refuses the others as S3 does --

REFUSALS = {
    # (accepted, used) -> (HTTP status, S3 code)
    ("s3v4", "s3"): (400, "InvalidRequest"),
    ("s3v4", "unsigned"): (403, "AccessDenied"),
    ("s3", "s3v4"): (403, "SignatureDoesNotMatch"),
    ("s3", "unsigned"): (403, "AccessDenied"),
    ("unsigned", "s3v4"): (403, "SignatureDoesNotMatch"),
    ("unsigned", "s3"): (403, "SignatureDoesNotMatch"),
}
BOTO_SIGNATURE: dict[str, Any] = {"s3v4": "s3v4", "s3": "s3", "unsigned": botocore.UNSIGNED}


@pytest.mark.parametrize("accepted", ["s3v4", "s3", "unsigned"])
def test_signature_knob_accepts_one_scheme_and_refuses_the_others(
    tmp_path: Path, accepted: str
) -> None:
    for target in serve(tmp_path, s3_signature=accepted):
        prefix = target.new_upload()
        key = f"{prefix}/v.mp4"
        ok = target.client(BOTO_SIGNATURE[accepted])
        upload_id = ok.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
        etag = ok.upload_part(
            Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=1, Body=b"p" * 1000
        )["ETag"]
        ok.complete_multipart_upload(
            Bucket="Upload",
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        )
        refused_schemes = [s for s in BOTO_SIGNATURE if s != accepted]
        for used in refused_schemes:
            wrong = target.client(BOTO_SIGNATURE[used])
            with pytest.raises(ClientError) as refused:
                wrong.create_multipart_upload(Bucket="Upload", Key=f"{prefix}/other.mp4")
            status, code = REFUSALS[(accepted, used)]
            assert error_code(refused) == code
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
            if code == "InvalidRequest":
                assert "AWS4-HMAC-SHA256" in refused.value.response["Error"]["Message"]
            # a refused part is refused before anything is stored
            with pytest.raises(ClientError):
                wrong.upload_part(
                    Bucket="Upload", Key=key, UploadId="x", PartNumber=1, Body=b"q" * 10
                )
        stats = target.sandbox.s3.stats()
        assert stats["signature"] == accepted
        assert stats["requests_by_signature"][accepted] == 3
        assert stats["signature_refusals"] == {used: 2 for used in refused_schemes}
        assert target.sandbox.bytes_received == 1000
        assert target.sandbox.object_path(prefix, "v.mp4").read_bytes() == b"p" * 1000


def test_signature_is_read_from_the_header_shape_and_presigned_queries(tmp_path: Path) -> None:
    for target in serve(tmp_path, s3_signature="s3v4"):
        prefix = target.new_upload()
        url = f"{target.url}/Panopto/Upload/{prefix}/m.xml"
        v4 = "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/s3/aws4_request, Signature=ab"
        assert httpx.put(url, content=b"x", headers={"Authorization": v4}).status_code == 200
        presigned = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Signature": "ab"}
        assert httpx.put(url, content=b"x", params=presigned).status_code == 200
        v2 = httpx.put(url, content=b"x", headers={"Authorization": "AWS k:c2lnbmF0dXJl"})
        assert v2.status_code == 400 and "<Code>InvalidRequest</Code>" in v2.text
        v2_query = httpx.put(url, content=b"x", params={"AWSAccessKeyId": "k", "Signature": "s"})
        assert v2_query.status_code == 400
        bearer = httpx.put(url, content=b"x", headers={"Authorization": "Bearer abc"})
        assert bearer.status_code == 400 and "<Code>InvalidArgument</Code>" in bearer.text
        # the refused bodies were drained: this connection-reusing client still works
        with httpx.Client() as http:
            assert http.put(url, content=b"y" * 5000).status_code == 403
            assert http.put(url, content=b"y", headers={"Authorization": v4}).status_code == 200
        stats = httpx.get(f"{target.url}/sandbox/s3/stats").json()
        assert stats["signature_refusals"] == {"s3": 2, "other": 1, "unsigned": 1}


def test_any_signature_by_default(target: Target) -> None:
    prefix = target.new_upload()
    for signature in SIGNATURES:
        target.client(signature).put_object(Bucket="Upload", Key=f"{prefix}/m.xml", Body=b"x")
    stats = target.sandbox.s3.stats()
    assert stats["signature"] == "any" and stats["signature_refusals"] == {}
    assert stats["requests_by_signature"] == {"s3": 1, "s3v4": 1, "unsigned": 1}


def test_bad_knob_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="signature"):
        next(serve(tmp_path, s3_signature="sigv5"))
    with pytest.raises(ValueError, match="max_parts_in_flight"):
        next(serve(tmp_path, s3_max_parts_in_flight=0))


def _send_part(s3: Any, key: str, upload_id: str, number: int) -> str:
    """Send a 1 MB part; answer "ok" or the S3 error code of a 503."""
    try:
        s3.upload_part(
            Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=number, Body=b"s" * 1_000_000
        )
    except ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        return str(exc.response["Error"]["Code"])
    return "ok"


def test_parts_beyond_the_in_flight_limit_get_slow_down(tmp_path: Path) -> None:
    """Two parts at once pass; a third while they are being received is told to slow down."""
    import concurrent.futures as cf
    import functools

    for target in serve(tmp_path, s3_max_parts_in_flight=2, s3_bandwidth=2e6):
        s3 = target.client()
        prefix = target.new_upload()
        key = f"{prefix}/v.mp4"
        upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
        send = functools.partial(_send_part, s3, key, upload_id)
        with cf.ThreadPoolExecutor(4) as pool:
            outcomes = sorted(pool.map(send, [1, 2, 3, 4]))
        # at 2 MB/s a 1 MB body takes ~0.5 s per pair: the third and fourth find both slots taken
        assert outcomes.count("ok") >= 2 and "SlowDown" in outcomes, outcomes
        stats = target.sandbox.s3.stats()
        assert stats["peak_parts_in_flight"] == 2
        assert stats["slow_downs"] == outcomes.count("SlowDown")
        assert send(5) == "ok"  # the slots are free again


def test_injected_503_is_slow_down(target: Target) -> None:
    s3 = target.client()
    prefix = target.new_upload()
    key = f"{prefix}/v.mp4"
    upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
    target.sandbox.fail_parts(1, status=503)
    with pytest.raises(ClientError) as slow:
        s3.upload_part(Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=1, Body=b"x")
    assert error_code(slow) == "SlowDown"
    assert "reduce your request rate" in slow.value.response["Error"]["Message"]


def test_sandbox_command_flags_set_the_knobs() -> None:
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-m", "vidauth", "sandbox", "--port", "0"]
    bad = subprocess.run(
        [*command, "--s3-signature", "sigv5"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("vidauth: --s3-signature sigv5: choose any, s3v4")
    bad = subprocess.run(
        [*command, "--s3-allow", "CopyObject"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "--s3-allow CopyObject: choose from" in bad.stderr
    proc = subprocess.Popen(
        [
            *command,
            *("--s3-signature", "s3v4", "--s3-max-parts-in-flight", "3"),
            *("--s3-allow", "ListParts", "--s3-allow", "HeadObject", "--s3-refusal", "405"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        stats = httpx.get(f"{url}/sandbox/s3/stats", timeout=10).json()
        assert stats["signature"] == "s3v4" and stats["max_parts_in_flight"] == 3
        assert stats["allow"] == ["HeadObject", "ListParts"]
        refused = httpx.post(f"{url}/Panopto/Upload/x/v.mp4?uploads", timeout=10)
        assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
    finally:
        proc.send_signal(signal.SIGINT)
        stop_or_explain(proc)


def test_lazy_complete_joins_the_parts_when_first_read(tmp_path: Path) -> None:
    """With the knob, CompleteMultipartUpload answers without copying every byte (as S3); the
    object's bytes are the parts' in order once read, and a replaced or deleted object leaves
    no parts."""
    for target in serve(tmp_path, s3_lazy_complete=True):
        _check_lazy_complete(target)


def _check_lazy_complete(target: Target) -> None:
    s3 = target.client()
    prefix = target.new_upload()
    key = f"{prefix}/lazy.mp4"
    chunks = [os.urandom(5 * MiB), os.urandom(123)]

    def complete_upload() -> Path:
        upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
        parts = [
            {
                "PartNumber": n,
                "ETag": s3.upload_part(
                    Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=n, Body=data
                )["ETag"],
            }
            for n, data in enumerate(chunks, start=1)
        ]
        s3.complete_multipart_upload(
            Bucket="Upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return target.sandbox.storage.root / ".multipart" / upload_id

    parts_dir = complete_upload()
    stored = target.sandbox.storage.objects(prefix)["lazy.mp4"]
    assert len(stored.parts) == 2 and parts_dir.is_dir()
    assert s3.head_object(Bucket="Upload", Key=key)["ContentLength"] == 5 * MiB + 123
    body = s3.get_object(Bucket="Upload", Key=key)["Body"].read()
    assert body == b"".join(chunks)
    assert not parts_dir.exists() and target.sandbox.storage.objects(prefix)["lazy.mp4"].parts == ()
    chunks = [os.urandom(5 * MiB), os.urandom(7)]
    replaced_dir = complete_upload()
    newer_dir = complete_upload()  # the same key again: the older parts go
    assert not replaced_dir.exists() and newer_dir.is_dir()
    assert target.sandbox.object_path(prefix, "lazy.mp4").read_bytes() == b"".join(chunks)
    complete_upload()
    s3.delete_object(Bucket="Upload", Key=key)
    assert list((target.sandbox.storage.root / ".multipart").iterdir()) == []


def test_request_bandwidth_knob_caps_each_request_not_all_together(tmp_path: Path) -> None:
    import concurrent.futures as cf

    for target in serve(tmp_path, s3_request_bandwidth=4e6):
        s3 = target.client()
        prefix = target.new_upload()
        body = os.urandom(2_000_000)

        def put(name: str, s3: Any = s3, prefix: str = prefix, body: bytes = body) -> None:
            s3.put_object(Bucket="Upload", Key=f"{prefix}/{name}", Body=body)

        started = time.monotonic()
        put("one.bin")
        alone = time.monotonic() - started
        started = time.monotonic()
        with cf.ThreadPoolExecutor(3) as pool:
            list(pool.map(put, ["a.bin", "b.bin", "c.bin"]))
        together = time.monotonic() - started
        assert 0.4 <= alone < 5, alone
        assert together < 2 * alone, (alone, together)  # three at once: not three times as long


def _refusal(call: Any, **kw: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as info:
        call(Bucket="Upload", **kw)
    return info.value.response["ResponseMetadata"]["HTTPStatusCode"], error_code(info)


CALL_REFUSALS = [(None, "NotImplemented"), (405, "MethodNotAllowed"), (403, "AccessDenied")]


@pytest.mark.parametrize(("refusal", "code"), CALL_REFUSALS)
def test_strict_by_default(tmp_path: Path, refusal: int | None, code: str) -> None:
    """Like the narrowest Panopto: only the multipart calls every public client makes are
    answered; PutObject, GetObject, HeadObject and ListParts are refused (501 unless the
    ``s3_refusal`` knob says 405 or 403)."""
    knobs: dict[str, Any] = {"s3_allow": PanoptoSandboxOptions(tmp_path).s3_allow}
    if refusal is not None:
        knobs["s3_refusal"] = refusal
    for target in serve(tmp_path, **knobs):
        _check_strict(target, refusal or 501, code)
    with pytest.raises(ValueError, match="allow"):
        next(serve(tmp_path, s3_allow=frozenset({"CopyObject"})))
    with pytest.raises(ValueError, match="refusal"):
        next(serve(tmp_path, s3_refusal=404))


def _check_strict(target: Target, status: int, code: str) -> None:
    s3 = target.client()
    prefix = target.new_upload()
    key = f"{prefix}/v.mp4"
    upload_id = s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]
    etag = s3.upload_part(
        Bucket="Upload", Key=key, UploadId=upload_id, PartNumber=1, Body=b"v" * 100
    )["ETag"]
    assert _refusal(s3.list_parts, Key=key, UploadId=upload_id) == (status, code)
    s3.complete_multipart_upload(
        Bucket="Upload",
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert target.sandbox.storage.object_path(prefix, "v.mp4").read_bytes() == b"v" * 100
    assert _refusal(s3.put_object, Key=f"{prefix}/m.xml", Body=b"x") == (status, code)
    assert _refusal(s3.get_object, Key=key) == (status, code)
    assert _refusal(s3.head_object, Key=key)[0] == status  # a HEAD answer has no body, no code
    assert target.sandbox.s3.stats()["refused_calls"] == {
        "ListParts": 1,
        "PutObject": 1,
        "GetObject": 1,
        "HeadObject": 1,
    }
    second = s3.create_multipart_upload(Bucket="Upload", Key=f"{prefix}/w.mp4")["UploadId"]
    s3.abort_multipart_upload(Bucket="Upload", Key=f"{prefix}/w.mp4", UploadId=second)


def test_first_part_arrival_of_each_upload(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stats give when each upload's first UploadPart arrived (a benchmark's measure), keep
    it through later parts, and keep only the newest uploads."""
    import vidauth_sandbox.s3 as s3_module

    s3 = target.client()

    def start(prefix: str) -> tuple[str, str]:
        key = f"{prefix}/v.mp4"
        return key, s3.create_multipart_upload(Bucket="Upload", Key=key)["UploadId"]

    def arrivals() -> dict[str, float]:
        stats = httpx.get(f"{target.url}/sandbox/s3/stats").json()
        return dict(stats["first_part_arrivals"])

    first = target.new_upload()
    key, upload_id = start(first)
    assert first not in arrivals()  # CreateMultipartUpload is not a part
    before = time.time()
    assert _send_part(s3, key, upload_id, 1) == "ok"
    arrived = arrivals()[first]
    assert before <= arrived <= time.time()
    assert _send_part(s3, key, upload_id, 2) == "ok"
    assert arrivals()[first] == arrived

    monkeypatch.setattr(s3_module, "FIRST_PARTS_KEPT", 2)
    later = [target.new_upload() for _ in range(2)]
    for prefix in later:
        assert _send_part(s3, *start(prefix), 1) == "ok"
    assert list(arrivals()) == later
