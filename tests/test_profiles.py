"""vidauth.toml profiles: presets, secret references, one-line errors, `vidauth profiles`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidauth.cli import run
from vidauth.config import load_settings
from vidauth.errors import ConfigError


def write(path: Path, text: str) -> Path:
    target = path / "vidauth.toml"
    target.write_text(text)
    return target


def profile(name: str, **flags: object):  # type: ignore[no-untyped-def]
    return load_settings(env_file=False, vidauth_profile=name, **flags).profile()


def test_presets_build_each_platforms_endpoints(clean_env: Path) -> None:
    write(
        clean_env,
        """
[profiles.pan]
provider = "panopto"
server = "deakin.au.panopto.com"
client_id = "p"
client_secret = "s"

[profiles.ing]
provider = "ingest"
client_id = "IngestNetwork123"
client_secret = "s"
authorize_params = { network_id = "net-1" }

[profiles.omni]
provider = "omniport"
server = "https://channeli.in/"
client_id = "o"
client_secret = "s"

[profiles.dot]
provider = "dot"
server = "https://id.example.edu"
client_id = "d"
client_secret = "s"

[profiles.op]
provider = "oidc"
issuer = "https://op.example.edu/"
client_id = "c"

[profiles.raw]
provider = "oauth2"
authorize_url = "https://a.example.com/auth"
token_url = "https://a.example.com/token"
client_id = "r"
client_secret = "s"
client_auth = "client_secret_post"
pkce = false
""",
    )
    pan = profile("pan")
    assert pan.endpoints.token_url == "https://deakin.au.panopto.com/Panopto/oauth2/connect/token"
    assert pan.scope == "openid api offline_access" and not pan.pkce

    ing = profile("ing")
    assert ing.endpoints.authorize_url == "https://login.ingest.io/authorize"
    assert ing.endpoints.token_url == "https://login.ingest.io/token"
    assert ing.scope == "read_videos,write_videos" and ing.client_auth == "client_secret_basic"
    assert ing.provider.token_headers["Accept"] == "application/vnd.ingest.v1+json"
    assert ing.authorize_params == {"network_id": "net-1"}

    omni = profile("omni")
    assert omni.endpoints.authorize_url == "https://channeli.in/oauth/authorise/"
    assert omni.endpoints.token_url == "https://channeli.in/open_auth/token/"
    assert omni.provider.requires_state and omni.client_auth == "client_secret_post"

    dot = profile("dot")
    assert dot.endpoints.token_url == "https://id.example.edu/o/token/"
    assert dot.endpoints.revocation_url == "https://id.example.edu/o/revoke_token/"
    assert dot.endpoints.userinfo_url == "https://id.example.edu/o/userinfo/"
    assert (
        dot.endpoints.discovery_url == "https://id.example.edu/o/.well-known/openid-configuration"
    )
    assert dot.pkce

    op = profile("op")
    assert op.endpoints.issuer == "https://op.example.edu/"  # exactly as the provider spells it
    assert op.endpoints.discovery_url == "https://op.example.edu/.well-known/openid-configuration"
    assert op.endpoints.token_url is None and op.pkce and op.client_secret is None

    raw = profile("raw")
    assert raw.endpoints.authorize_url == "https://a.example.com/auth" and not raw.pkce
    assert raw.client_auth == "client_secret_post"


def test_profile_key_is_stable_per_server_and_client(clean_env: Path) -> None:
    toml = """
[profiles.a]
provider = "dot"
server = "https://id.example.edu/"
client_id = "d"
scope = "%s"
"""
    write(clean_env, toml % "openid")
    first = profile("a").key
    write(clean_env, toml % "read write")
    assert profile("a").key == first == "dot|https://id.example.edu|d"


def test_secrets_from_env_and_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = clean_env / "mounted-secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("DOT_SECRET", "from-the-env")
    write(
        clean_env,
        f"""
[profiles.e]
provider = "dot"
server = "https://id.example.edu"
client_id = "d"
client_secret = "env:DOT_SECRET"

[profiles.f]
provider = "dot"
server = "https://id.example.edu"
client_id = "d"
client_secret = "file:{secret_file}"
""",
    )
    e, f = profile("e"), profile("f")
    assert e.client_secret is not None and e.client_secret.value == "from-the-env"
    assert f.client_secret is not None and f.client_secret.value == "from-a-file"
    assert "from-the-env" not in repr(e)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'provider = "dot"\nserver = "https://x.example"\nclient_id = "a"\nclient_idd = "b"',
            "unknown key client_idd in [profiles.bad] of",
        ),
        ('provider = "dot"\nserver = "https://x.example"\nclient_id = "a"\npkce = "yes"', "pkce"),
        ('provider = "nope"\nclient_id = "a"', "provider"),
        ('provider = "dot"\nclient_id = "a"', "needs server"),
        (
            'provider = "dot"\nserver = "http://id.example.edu"\nclient_id = "a"',
            "plain http is allowed only to loopback",
        ),
        ('provider = "oauth2"\nclient_id = "a"\ntoken_url = "http://10.0.0.1/token"', "token_url"),
        ('provider = "oidc"\nclient_id = "a"', "needs issuer"),
        (
            'provider = "dot"\nserver = "https://x.example"\nclient_id = "a"\n'
            'client_secret = "env:VIDAUTH_TEST_NOT_SET"',
            "VIDAUTH_TEST_NOT_SET is not set",
        ),
        (
            'provider = "dot"\nserver = "https://x.example"\nclient_id = "a"\n'
            'redirect_uri = "http://example.com/cb"',
            "redirect_uri",
        ),
        (
            'provider = "panopto"\nserver = "https://x.example"\nclient_id = "a"\n'
            'application_key = "the-key-itself"',
            "application_key",
        ),
        ('provider = "dot"\nserver = "https://x.example"', "client_id is missing"),
    ],
)
def test_mistakes_are_one_line_naming_key_and_file(
    clean_env: Path, body: str, expected: str
) -> None:
    path = write(clean_env, f"[profiles.bad]\n{body}\n")
    with pytest.raises(ConfigError) as info:
        profile("bad")
    message = info.value.message
    assert expected in message and str(path) in message and "\n" not in message
    assert info.value.exit_code == 2


def test_unknown_profile_and_no_file(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match=r"no vidauth\.toml"):
        profile("nowhere")
    write(
        clean_env,
        '[profiles.one]\nprovider = "dot"\nserver = "https://x.example"\nclient_id = "a"\n',
    )
    with pytest.raises(ConfigError, match=r"not in .*profiles there: one"):
        profile("two")


def test_default_is_reserved_and_bad_toml(clean_env: Path) -> None:
    write(
        clean_env,
        '[profiles.default]\nprovider = "dot"\nserver = "https://x.example"\nclient_id = "a"\n',
    )
    with pytest.raises(ConfigError, match="rename"):
        profile("other")
    write(clean_env, "[profiles.x\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        profile("x")


def test_file_in_vidauth_home_and_env_selection(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write(home, '[profiles.h]\nprovider = "dot"\nserver = "https://h.example"\nclient_id = "a"\n')
    monkeypatch.setenv("VIDAUTH_HOME", str(home))
    monkeypatch.setenv("VIDAUTH_PROFILE", "h")
    selected = load_settings(env_file=False).profile()
    assert selected.name == "h" and selected.server == "https://h.example"
    # ./vidauth.toml wins over VIDAUTH_HOME's
    write(
        clean_env,
        '[profiles.h]\nprovider = "dot"\nserver = "https://cwd.example"\nclient_id = "a"\n',
    )
    assert load_settings(env_file=False).profile().server == "https://cwd.example"


def test_profiles_command_lists_sources_never_secrets(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PANOPTO_SERVER", "deakin.au.panopto.com")
    monkeypatch.setenv("PANOPTO_CLIENT_ID", "pid")
    monkeypatch.setenv("PANOPTO_CLIENT_SECRET", "panopto-secret-value")
    monkeypatch.setenv("DOT_SECRET", "dot-secret-value")
    write(
        clean_env,
        """
[profiles.dot]
provider = "dot"
server = "https://id.example.edu"
client_id = "d"
client_secret = "env:DOT_SECRET"

[profiles.lit]
provider = "dot"
server = "https://id.example.edu"
client_id = "l"
client_secret = "literal-secret-value"

[profiles.broken]
provider = "dot"
server = "https://id.example.edu"
client_id = "b"
client_secret = "env:VIDAUTH_TEST_MISSING"
""",
    )
    assert run(["profiles", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in data["profiles"]}
    assert set(rows) == {"default", "dot", "lit", "broken"}
    assert rows["dot"]["client_secret"] == "env:DOT_SECRET"
    assert rows["lit"]["client_secret"] == "literal in the file"
    assert rows["default"]["selected"] and rows["broken"]["problem"]
    assert run(["--profile", "dot", "profiles"]) == 0
    shown = capsys.readouterr()
    everything = shown.out + shown.err + json.dumps(data)
    for secret in ("panopto-secret-value", "dot-secret-value", "literal-secret-value"):
        assert secret not in everything
    assert "VIDAUTH_TEST_MISSING" in shown.err


def test_profiles_file_not_utf8_is_a_config_error(clean_env: Path) -> None:
    path = clean_env / "vidauth.toml"
    path.write_bytes(b'[profiles.p]\nprovider = "dot"\nserver = "https://caf\xe9.example"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        profile("p")
    assert str(path) in info.value.message and info.value.exit_code == 2


def test_misspelt_key_is_reported_before_the_missing_one_it_was_meant_to_be(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt client_id is both unknown and missing: the CLI names the misspelling first,
    with the closest known key, whichever order the keys are written in; exit 2."""
    for body in (
        'client_idd = "x"\nprovider = "dot"\nserver = "https://x.example"',
        'provider = "dot"\nserver = "https://x.example"\nclient_idd = "x"',
    ):
        path = write(clean_env, f"[profiles.x]\n{body}\n")
        assert run(["--profile", "x", "status"]) == 2
        shown = capsys.readouterr()
        assert shown.err.strip() == (
            f"vidauth: unknown key client_idd in [profiles.x] of {path} — did you mean client_id?"
        )
        assert "is missing" not in shown.err


def test_missing_key_is_reported_once_the_misspelling_is_fixed(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(clean_env, '[profiles.x]\nprovider = "dot"\nserver = "https://x.example"\n')
    assert run(["--profile", "x", "status"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vidauth: {path}: [profiles.x] client_id is missing; add it"
    )


def test_unknown_key_far_from_any_known_one_lists_them(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        clean_env,
        '[profiles.x]\nprovider = "dot"\nserver = "https://x.example"\nclient_id = "a"\nzzz = 1\n',
    )
    assert run(["--profile", "x", "status"]) == 2
    err = capsys.readouterr().err
    assert f"unknown key zzz in [profiles.x] of {path} — known keys: provider, client_id" in err
    write(clean_env, '[profile.x]\nprovider = "dot"\n')  # the table name itself misspelt
    assert run(["--profile", "x", "status"]) == 2
    assert "unknown key profile in " in (err := capsys.readouterr().err)
    assert "did you mean profiles?" in err
