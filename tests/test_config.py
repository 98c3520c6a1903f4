from __future__ import annotations

from pathlib import Path

import pytest

from vidauth.config import load_settings, normalize_server, validate_redirect_uri
from vidauth.errors import ConfigError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("deakin.au.panopto.com", "https://deakin.au.panopto.com"),
        ("https://Deakin.AU.panopto.com/", "https://deakin.au.panopto.com"),
        ("https://deakin.au.panopto.com/Panopto/Pages/Home.aspx", "https://deakin.au.panopto.com"),
        ("http://127.0.0.1:9128", "http://127.0.0.1:9128"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_server_forms(given: str, expected: str) -> None:
    assert normalize_server(given) == expected


@pytest.mark.parametrize(
    "hostile",
    [
        "http://deakin.au.panopto.com",
        "ftp://x.example",
        "",
        "   ",
        "exa mple.com",
        "https://",
        "javascript:alert(1)",
        "http://127.0.0.1.evil.com",
        "https://a/b c",
        "http://10.0.0.1",
    ],
)
def test_server_rejects(hostile: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_server(hostile)
    assert "PANOPTO_SERVER" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "hostile",
    [
        "http://example.com/redirect",
        "localhost:9127/redirect",
        "http://localhost:99999/x",
        "http://localhost:9127/redirect#frag",
        "/redirect",
    ],
)
def test_redirect_uri_rejects(hostile: str) -> None:
    with pytest.raises(ConfigError, match="PANOPTO_REDIRECT_URI"):
        validate_redirect_uri(hostile)


def test_precedence_flag_over_env_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (Path.cwd() / ".env").write_text(
        "PANOPTO_SERVER=dotenv.example.com\nPANOPTO_CLIENT_ID=from-dotenv\n"
        "PANOPTO_CLIENT_SECRET=dotenv-secret\n"
    )
    assert load_settings().profile().server == "https://dotenv.example.com"
    monkeypatch.setenv("PANOPTO_SERVER", "env.example.com")
    profile = load_settings().profile()
    assert profile.server == "https://env.example.com"
    assert profile.client_id == "from-dotenv"
    flagged = load_settings(panopto_server="flag.example.com").profile()
    assert flagged.server == "https://flag.example.com"
    assert flagged.redirect_uri == "http://localhost:9127/redirect"
    assert flagged.scope == "openid api offline_access"
    assert flagged.pkce is False


def test_env_file_flag(tmp_path: Path) -> None:
    other = tmp_path / "other.env"
    other.write_text("PANOPTO_SERVER=x.example.com\nPANOPTO_CLIENT_ID=a\nPANOPTO_CLIENT_SECRET=b\n")
    assert load_settings(env_file=other).profile().server == "https://x.example.com"
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(env_file=tmp_path / "missing.env")


def test_secret_never_in_repr(tmp_path: Path) -> None:
    (Path.cwd() / ".env").write_text(
        "PANOPTO_SERVER=x.example.com\nPANOPTO_CLIENT_ID=a\nPANOPTO_CLIENT_SECRET=s3cr3t-value\n"
    )
    settings = load_settings()
    profile = settings.profile()
    assert "s3cr3t-value" not in repr(profile)
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(profile.client_secret)
    assert profile.client_secret is not None and profile.client_secret.value == "s3cr3t-value"


@pytest.mark.parametrize(
    ("content", "variable"),
    [
        ("", "PANOPTO_SERVER"),
        ("PANOPTO_SERVER=x.example.com\n", "PANOPTO_CLIENT_ID"),
        ("PANOPTO_SERVER=x.example.com\nPANOPTO_CLIENT_ID=a\n", "PANOPTO_CLIENT_SECRET"),
        (
            "PANOPTO_SERVER=x.example.com\nPANOPTO_CLIENT_ID=a\nPANOPTO_CLIENT_SECRET=\n",
            "PANOPTO_CLIENT_SECRET",
        ),
    ],
)
def test_missing_settings_name_the_variable(tmp_path: Path, content: str, variable: str) -> None:
    (Path.cwd() / ".env").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings().profile()
    message = str(info.value)
    assert message.startswith(variable)
    assert "e.g." in message


def test_bad_database_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VIDAUTH_DATABASE_URL"):
        load_settings(vidauth_database_url="mysql://root@localhost/x")


def test_env_file_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (Path.cwd() / ".env").write_bytes(b"PANOPTO_SERVER=caf\xe9.example.com\n")
    with pytest.raises(ConfigError, match=r"\.env: not UTF-8 text; save it as UTF-8") as info:
        load_settings()
    assert info.value.exit_code == 2


CONFIG_MODULES = ("_defaults", "_urls", "profiles", "config", "_fastpath")


def _vidauth_imports(module: str) -> set[str]:
    """Every vidauth module ``module`` imports, at the top or inside a function."""
    import ast

    import vidauth

    source = Path(vidauth.__file__).with_name(f"{module}.py").read_text()
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "vidauth":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("vidauth."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("vidauth."))
    return found


def test_configuration_modules_import_each_other_one_way_only() -> None:
    """No cycle, not even one broken by a late import: each module may use only those
    listed before it in CONFIG_MODULES."""
    for i, module in enumerate(CONFIG_MODULES):
        later = set(CONFIG_MODULES[i:])
        assert not (_vidauth_imports(module) & later), module


@pytest.mark.parametrize("module", CONFIG_MODULES)
def test_each_configuration_module_imports_alone(module: str) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", f"import vidauth.{module}"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
