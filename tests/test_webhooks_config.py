"""The [webhooks] section: schedule from the environment, and values refused with the key named."""

import pytest

from servicegate.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVICEGATE_CONFIG", raising=False)


def test_schedule_and_events_from_environment(monkeypatch):
    monkeypatch.setenv("SERVICEGATE_WEBHOOKS__RETRY_SCHEDULE", '["0s", "1s", "2m"]')
    monkeypatch.setenv("SERVICEGATE_WEBHOOKS__CUSTOM_EVENTS", '["OrderShipped", "ordershipped"]')
    cfg = load_settings().webhooks
    assert cfg.retry_schedule == [0.0, 1.0, 120.0]
    assert cfg.custom_events == ["ordershipped"]


@pytest.mark.parametrize(("env", "value", "named"), [
    ("SERVICEGATE_WEBHOOKS__RETRY_SCHEDULE", "[]", "retry_schedule"),
    ("SERVICEGATE_WEBHOOKS__RETRY_SCHEDULE", '["soon"]', "retry_schedule"),
    ("SERVICEGATE_WEBHOOKS__CUSTOM_EVENTS", '["bad name!"]', "custom_events"),
    ("SERVICEGATE_WEBHOOKS__LEASE", "10s", "lease must be longer than timeout"),
    ("SERVICEGATE_WEBHOOKS__CONCURRENCY", "0", "concurrency"),
])
def test_bad_values_name_the_key(monkeypatch, env, value, named):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()
