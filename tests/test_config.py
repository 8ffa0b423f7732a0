from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicegate.config import ConfigError, load_settings
from servicegate.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5), ("5m", 300), ("2h", 7200), ("1d", 86400), (3, 3.0), ("1.5s", 1.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "5x", "-5s", "s", True, -1, "5 minutes"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@settings(deadline=None)  # a loaded CI machine must not fail a correct example
@given(st.integers(min_value=0, max_value=10**7), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_duration_roundtrip(n, unit):
    seconds = parse_duration(f"{n}{unit}")
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_defaults_serve_embedded_case(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVICEGATE_CONFIG", raising=False)
    s = load_settings()
    assert s.server.host == "127.0.0.1" and s.server.port == 8080
    assert s.database.url.startswith("sqlite:///var/")
    assert s.webhooks.retry_schedule == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def test_toml_and_env_override(monkeypatch, tmp_path: Path):
    cfg = tmp_path / "servicegate.toml"
    cfg.write_text(
        '[server]\nport = 9000\nbase_path = "/gw/"\n[auth]\ntoken_ttl = "5m"\n'
        '[webhooks]\nretry_schedule = ["0s", "1s"]\n'
    )
    monkeypatch.setenv("SERVICEGATE_CONFIG", str(cfg))
    monkeypatch.setenv("SERVICEGATE_SERVER__PORT", "9100")
    s = load_settings()
    assert s.server.port == 9100
    assert s.server.base_path == "/gw"
    assert s.auth.token_ttl == 300
    assert s.webhooks.retry_schedule == [0, 1]


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("SERVICEGATE_SERVER__PORT", "abc", "server.port"),
        ("SERVICEGATE_AUTH__TOKEN_TTL", "forever", "auth.token_ttl"),
        ("SERVICEGATE_DATABASE__URL", "mysql://x", "database.url"),
        ("SERVICEGATE_LIMITS__MAX_BODY_BYTES", "1", "limits.max_body_bytes"),
    ],
)
def test_invalid_value_names_the_key(monkeypatch, tmp_path, env, value, named):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVICEGATE_CONFIG", raising=False)
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert named in str(info.value)


def test_unknown_key_in_file_is_refused(monkeypatch, tmp_path):
    cfg = tmp_path / "servicegate.toml"
    cfg.write_text("[server]\nprot = 1\n")
    monkeypatch.setenv("SERVICEGATE_CONFIG", str(cfg))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "server.prot" in str(info.value)


def test_missing_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SERVICEGATE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings()
