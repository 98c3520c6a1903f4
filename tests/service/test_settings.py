"""The service's VIDAUTH_* variables: read from the environment and .env, defaults, and one
ConfigError naming the variable for each wrong value (plain unit tests: no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidauth.config import load_settings
from vidauth.errors import ConfigError, ErrorCode
from vidauth.service.settings import ServiceSettings, load_service_settings


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> ServiceSettings:
    monkeypatch.setenv("VIDAUTH_PUBLIC_URL", "http://127.0.0.1:9")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(env_file=False, vidauth_home=str(tmp_path / "home"))
    return load_service_settings(settings, env_file=tmp_path / "none.env")


def test_settings_are_read_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"VIDAUTH_HEADER_TIMEOUT": "7", "VIDAUTH_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16"}
    service = _load(tmp_path, monkeypatch, **env)
    assert service.header_timeout == 7
    assert service.body_idle_timeout == 30 and service.max_connections_per_client == 64
    assert service.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    assert service.model_copy(update={"header_timeout": 1}).header_timeout == 1
    monkeypatch.setenv("VIDAUTH_TRUSTED_PROXIES", "not-an-address")
    with pytest.raises(ConfigError, match="VIDAUTH_TRUSTED_PROXIES"):
        load_service_settings(
            load_settings(env_file=False, vidauth_home=str(tmp_path)), tmp_path / "none.env"
        )


def test_defaults_and_conversions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _load(
        tmp_path,
        monkeypatch,
        VIDAUTH_PUBLIC_URL="https://vidauth.example.edu/base/",
        VIDAUTH_CALLBACK_PATH=" ",
        VIDAUTH_CONNECT_RETURN_URL=" ",
        VIDAUTH_WEBHOOK_SECRET="  s3cret  ",
        VIDAUTH_METRICS_TOKEN=" ",
        VIDAUTH_WEBHOOK_ALLOW_NETWORKS="10.0.0.0/8, ::1",
        VIDAUTH_UPLOAD_BWLIMIT="10M",
        VIDAUTH_TOKEN_MIN_VALIDITY="-5",
    )
    assert service.public_url == "https://vidauth.example.edu/base"
    assert service.callback_url == "https://vidauth.example.edu/base/oauth/callback"
    assert service.connect_return_url is None
    assert service.upload_dir == tmp_path / "home" / "service-uploads"
    assert service.shared_dir is None
    assert service.webhook_secret == "s3cret" and service.metrics_token is None
    assert [str(n) for n in service.webhook_allow_networks] == ["10.0.0.0/8", "::1/128"]
    assert service.upload_bwlimit == 10 * 1024 * 1024
    assert service.token_min_validity == 0
    assert service.upload_parallel is None and service.worker_jobs == 2
    assert "s3cret" not in repr(service)


def test_dotenv_is_read_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / "service.env"
    dotenv.write_text("VIDAUTH_WORKER_JOBS=5\nVIDAUTH_POLL_SECONDS=2\nVIDAUTH_DATABASE_URL=x\n")
    monkeypatch.setenv("VIDAUTH_POLL_SECONDS", "3")
    monkeypatch.setenv("VIDAUTH_PUBLIC_URL", "http://127.0.0.1:9")
    settings = load_settings(env_file=False, vidauth_home=str(tmp_path / "home"))
    service = load_service_settings(settings, env_file=dotenv)
    assert service.worker_jobs == 5 and service.poll_seconds == 3


@pytest.mark.parametrize(
    ("env", "variable", "message"),
    [
        ({"VIDAUTH_PUBLIC_URL": " "}, "VIDAUTH_PUBLIC_URL", "VIDAUTH_PUBLIC_URL is not set"),
        ({"VIDAUTH_PUBLIC_URL": "ftp://x"}, "VIDAUTH_PUBLIC_URL", "is not an absolute URL"),
        ({"VIDAUTH_PUBLIC_URL": "https://x/?a"}, "VIDAUTH_PUBLIC_URL", "query or fragment"),
        ({"VIDAUTH_CALLBACK_PATH": "cb"}, "VIDAUTH_CALLBACK_PATH", "starting with /"),
        ({"VIDAUTH_SHARED_DIR": "/no/such/dir"}, "VIDAUTH_SHARED_DIR", "no such directory"),
        ({"VIDAUTH_MAX_UPLOAD_BYTES": "0"}, "VIDAUTH_MAX_UPLOAD_BYTES", "must be positive"),
        ({"VIDAUTH_LEASE_SECONDS": "-1"}, "VIDAUTH_LEASE_SECONDS", r"positive \(got -1.0\)"),
        ({"VIDAUTH_UPLOAD_PARALLEL": "0"}, "VIDAUTH_UPLOAD_PARALLEL", "must be positive"),
        ({"VIDAUTH_HEARTBEAT_SECONDS": "20"}, "VIDAUTH_HEARTBEAT_SECONDS", "at most half"),
        ({"VIDAUTH_UPLOAD_BWLIMIT": "fast"}, "VIDAUTH_UPLOAD_BWLIMIT", "'fast' is not a rate"),
        ({"VIDAUTH_WEBHOOK_ALLOW_NETWORKS": "x"}, "VIDAUTH_WEBHOOK_ALLOW_NETWORKS", "network"),
        ({"VIDAUTH_METRICS_TOKEN": "short"}, "VIDAUTH_METRICS_TOKEN", "shorter than 16"),
        ({"VIDAUTH_TRUSTED_PROXIES": "x"}, "VIDAUTH_TRUSTED_PROXIES", "not an address"),
    ],
)
def test_a_wrong_value_names_its_variable(
    env: dict[str, str],
    variable: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        _load(tmp_path, monkeypatch, **env)
    assert raised.value.code == ErrorCode.CONFIG_INVALID
    assert raised.value.facts["variable"] == variable
    assert str(raised.value).startswith(variable)


def test_a_value_of_the_wrong_type_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"^VIDAUTH_WORKER_JOBS: Input should be a valid integer"):
        _load(tmp_path, monkeypatch, VIDAUTH_WORKER_JOBS="many")
