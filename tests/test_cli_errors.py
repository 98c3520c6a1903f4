"""The CLI's wording of error codes: the library's line, then the command that fixes it."""

from __future__ import annotations

import pytest

from vidauth.cli.errors import EXIT_CODES, exit_code, sentence
from vidauth.errors import (
    ErrorCode,
    OAuthError,
    RemoteServiceError,
    SignInRequired,
    StoreError,
    UsageError,
)


def test_every_code_has_an_exit_code() -> None:
    assert set(EXIT_CODES) == set(ErrorCode)


def test_sentences_add_the_command_to_the_library_line() -> None:
    gone = RemoteServiceError(
        "upload 3's multipart upload no longer exists at the target",
        code=ErrorCode.MULTIPART_UPLOAD_GONE,
        record_id=3,
    )
    assert sentence(gone).endswith(": cancel it with `vidauth uploads cancel 3` and upload again")
    assert exit_code(gone) == 4
    lost = RemoteServiceError(
        "uploading part 2 of a.mp4 failed: could not reach the upload target",
        code=ErrorCode.UPLOAD_TARGET_FAILED,
        record_id=7,
        status=None,
    )
    assert sentence(lost).endswith(
        "; check your network and run the same command again to resume, or "
        "`vidauth uploads cancel 7`"
    )
    assert sentence(SignInRequired("not signed in")) == "not signed in: run `vidauth login`"
    assert exit_code(UsageError("no upload 9", code=ErrorCode.UPLOAD_NOT_FOUND)) == 2
    grant = OAuthError("invalid_grant", "signing in failed: invalid_grant: sign in again")
    assert sentence(grant).endswith("; run `vidauth login`") and exit_code(grant) == 3
    assert "vidauth" not in str(grant)


def test_a_code_without_advice_is_the_library_line() -> None:
    error = StoreError("the database cannot be read")
    assert sentence(error) == "the database cannot be read" and exit_code(error) == 2


def test_the_cli_adds_the_flag_to_the_library_facts() -> None:
    from vidauth.panopto.files import part_size
    from vidauth.panopto.signature import check_choice

    with pytest.raises(UsageError) as raised:
        part_size(100, 30)
    exc = raised.value
    assert "--" not in exc.message and exc.facts["requested_mib"] == 30
    assert sentence(exc) == (
        "part size 30 MiB: parts go from 5 to 23 MiB (Panopto may fail parts above 25000000 "
        "bytes); choose a whole number in that range for --part-size"
    )
    assert exit_code(exc) == 2
    parallel = UsageError("parallel parts must be at least 1, not 0", option="parallel", value=0)
    assert sentence(parallel) == "parallel parts must be at least 1, not 0 (--parallel)"
    with pytest.raises(UsageError) as bad_choice:
        check_choice("v9")
    assert "--" not in bad_choice.value.message
    assert sentence(bad_choice.value).startswith("--signature v9: choose one of auto, ")
    home = UsageError("cannot create /x: set VIDAUTH_HOME", code=ErrorCode.HOME_UNWRITABLE)
    assert sentence(home) == "cannot create /x: set VIDAUTH_HOME (or pass --home)"
    remote = RemoteServiceError(
        "signing in failed: https://x/token gave HTTP 200", token_endpoint="https://x/token"
    )
    assert sentence(remote).endswith(" (`vidauth doctor` checks it)")


def test_a_redirect_uri_off_loopback_gets_the_clis_way_out() -> None:
    from vidauth.errors import ConfigError
    from vidauth.oauth.loopback import LoopbackListener

    with pytest.raises(ConfigError) as raised:
        LoopbackListener("https://example.com/redirect", "state")
    exc = raised.value
    assert exc.code == ErrorCode.REDIRECT_NOT_LOOPBACK and "--" not in exc.message
    assert sentence(exc).endswith(
        ": use http://localhost:PORT/PATH, or --no-browser and paste the URL"
    )
    assert exit_code(exc) == 2
