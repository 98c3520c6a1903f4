"""``vidauth upload`` against S3 targets that accept one signature scheme only (the sandbox's
``s3_signature`` knob), through the CLI, counting refused requests at the target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.panopto.conftest import MiB, PanoptoSetup, write_random
from vidauth.store.signatures import SignatureHostStore
from vidauth.store.uploads import UploadStore


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the CLI in-process against a sandbox; answer (exit code, stdout, stderr)."""
    from vidauth.cli import run

    def call(setup: PanoptoSetup, *argv: str) -> tuple[int, str, str]:
        for key, value in setup.env().items():
            if key.startswith(("PANOPTO_", "VIDAUTH_")):
                monkeypatch.setenv(key, value)
        capsys.readouterr()
        code = run(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def _refusals(setup: PanoptoSetup) -> dict[str, int]:
    return dict(setup.panopto.s3.stats()["signature_refusals"])


def _host(setup: PanoptoSetup) -> str:
    return setup.server.url.split("://", 1)[1]


@pytest.mark.parametrize("accepts", ["s3v4", "s3", "unsigned"])
def test_uploads_pass_under_each_scheme_and_the_second_sends_no_refused_request(
    make_panopto: Callable[..., PanoptoSetup],
    cli: Any,
    tmp_path: Path,
    accepts: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setup = make_panopto(s3_signature=accepts)
    setup.va  # noqa: B018 - sign in
    first = write_random(tmp_path / "first.mp4", 6 * MiB, seed=1)
    code, _, err = cli(setup, "-v", "upload", str(first), "--folder", "SIT102 Labs", "--no-wait")
    assert code == 0, err
    refused = _refusals(setup)
    assert all(count == 1 for count in refused.values()), refused  # one per scheme at most
    assert accepts not in refused and len(refused) == ["s3", "s3v4", "unsigned"].index(accepts)
    # -v logs the choice once (caplog: the CLI's log handler writes to the first test's stderr)
    chosen = [r.getMessage() for r in caplog.records if "S3 signature for" in r.getMessage()]
    assert len(chosen) == 1 and chosen[0].startswith(f"S3 signature for {_host(setup)}: {accepts}")
    assert SignatureHostStore(setup.va.store.db).get(_host(setup)) == accepts

    second = write_random(tmp_path / "second.mp4", 6 * MiB, seed=2)
    code, _, err = cli(setup, "-v", "upload", str(second), "--folder", "SIT102 Labs", "--no-wait")
    assert code == 0, err
    assert len([r for r in caplog.records if "S3 signature for" in r.getMessage()]) == 2
    assert _refusals(setup) == refused  # started with the remembered scheme
    assert setup.panopto.s3.stats()["requests_by_signature"].keys() - refused.keys() == {accepts}


def test_a_resumed_upload_starts_with_the_remembered_scheme(
    make_panopto: Callable[..., PanoptoSetup], cli: Any, tmp_path: Path
) -> None:
    setup = make_panopto(s3_signature="unsigned")
    setup.va  # noqa: B018 - sign in
    video = write_random(tmp_path / "resume.mp4", 11 * MiB, seed=3)
    setup.panopto.fail_parts(100, status=403)  # parts refused: not for their signature
    args = ("upload", str(video), "--folder", "SIT102 Labs", "--part-size", "5", "--no-wait")
    code, _, err = cli(setup, *args)
    assert code == 4 and "AccessDenied (HTTP 403)" in err
    refused = _refusals(setup)
    assert refused == {"s3": 1, "s3v4": 1}
    setup.panopto.s3._faults.clear()
    code, _, err = cli(setup, *args)
    assert code == 0, err
    assert "resuming upload" in err
    assert _refusals(setup) == refused  # ListParts went unsigned at once
    [record] = UploadStore(setup.va.store.db).list_uploads()
    assert record.state == "processing"


def test_an_explicit_signature_is_not_second_guessed(
    make_panopto: Callable[..., PanoptoSetup], cli: Any, tmp_path: Path
) -> None:
    setup = make_panopto(s3_signature="s3v4")
    setup.va  # noqa: B018 - sign in
    video = write_random(tmp_path / "explicit.mp4", 6 * MiB, seed=4)
    code, _out, err = cli(
        setup, "upload", str(video), "--folder", "SIT102 Labs", "--signature", "s3", "--no-wait"
    )
    assert code == 4
    lines = [line for line in err.splitlines() if line.startswith("vidauth:")]
    assert lines == [
        f"vidauth: the upload target {_host(setup)} refused the s3 signature "
        "(InvalidRequest, HTTP 400): leave out --signature (and the profile's `signature` key) "
        "to let vidauth find the scheme it accepts, or choose another"
    ]
    assert _refusals(setup) == {"s3": 1}  # one request, no negotiation
    assert SignatureHostStore(setup.va.store.db).get(_host(setup)) is None
    code, _, err = cli(setup, "upload", str(video), "--folder", "SIT102 Labs", "--no-wait")
    assert code == 0, err  # auto, resuming the same upload: s3 was refused, s3v4 works
    assert _refusals(setup) == {"s3": 2}


def test_a_target_that_refuses_every_scheme_fails_after_one_try_of_each(
    make_panopto: Callable[..., PanoptoSetup], cli: Any, tmp_path: Path
) -> None:
    setup = make_panopto(s3_signature="s3v4")
    setup.va  # noqa: B018 - sign in
    setup.panopto.s3.signature = "nothing-matches"  # refuses every scheme
    video = write_random(tmp_path / "none.mp4", 6 * MiB, seed=5)
    code, _, err = cli(setup, "upload", str(video), "--folder", "SIT102 Labs", "--no-wait")
    assert code == 4
    assert _refusals(setup) == {"s3": 1, "s3v4": 1, "unsigned": 1}
    assert "refused every S3 signature scheme (s3, s3v4, unsigned)" in err
    assert "report this to your Panopto administrator" in err


def test_a_bad_signature_choice_is_a_usage_error(cli: Any, panopto: PanoptoSetup) -> None:
    code, _, err = cli(panopto, "upload", "x.mp4", "--folder", "f", "--signature", "v4")
    assert code == 2
    assert err.strip() == "vidauth: --signature v4: choose one of auto, s3, s3v4, unsigned"


def test_the_profile_signature_key_is_used_as_given_and_the_flag_wins(
    make_panopto: Callable[..., PanoptoSetup],
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vidauth.client import Vidauth
    from vidauth.config import load_settings

    setup = make_panopto(s3_signature="s3")
    setup.home.mkdir(parents=True, exist_ok=True)
    (setup.home / "vidauth.toml").write_text(
        "[profiles.pinned]\n"
        'provider = "panopto"\n'
        f'server = "{setup.server.url}"\n'
        f'client_id = "{setup.client_id}"\n'
        'client_secret = "env:PINNED_SECRET"\n'
        f'redirect_uri = "{setup.redirect_uri}"\n'
        'signature = "s3v4"\n'
    )
    monkeypatch.setenv("PINNED_SECRET", setup.client_secret)
    monkeypatch.chdir(tmp_path)
    va = Vidauth(load_settings(**setup.flags(vidauth_profile="pinned")))
    assert va.profile.signature == "s3v4"
    setup.login(va)
    va.close()
    video = write_random(tmp_path / "profiled.mp4", 6 * MiB, seed=6)
    args = ("--profile", "pinned", "upload", str(video), "--folder", "SIT102 Labs", "--no-wait")
    code, _, err = cli(setup, *args)
    assert code == 4 and "refused the s3v4 signature (SignatureDoesNotMatch, HTTP 403)" in err
    assert _refusals(setup) == {"s3v4": 1}
    code, _, err = cli(setup, *args, "--signature", "auto")
    assert code == 0, err
    assert _refusals(setup) == {"s3v4": 1}  # auto starts with s3, which this target takes
