"""What a new user meets first: configuration and definition errors in their own words (file,
line, the nearest known key), commands that say which settings they use, unknown scopes
refused, text printed as it is, a command line that starts quickly."""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from servicegate.config import ConfigError, load_settings
from tests.support.processes import SERVICEGATE, run_command
from tests.test_auth_api import assert_problem

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **extra}


def test_a_typo_in_the_file_names_file_line_and_the_nearest_key(monkeypatch, tmp_path):
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[server]\nport = 8080\n\n[auth]\ntoken_tll = "1h"\n')
    monkeypatch.setenv("SERVICEGATE_CONFIG", str(cfg))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert f"{cfg}:5: auth.token_tll: unknown key; did you mean 'token_ttl'?" in message
    assert "SERVICEGATE_AUTH__TOKEN_TLL" not in message  # no environment variable is to blame


def test_a_bad_value_from_the_environment_names_the_variable(monkeypatch, tmp_path):
    cfg = tmp_path / "gw.toml"
    cfg.write_text("[server]\nport = 8080\n")
    monkeypatch.setenv("SERVICEGATE_CONFIG", str(cfg))
    monkeypatch.setenv("SERVICEGATE_SERVER__PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert ("server.port (env SERVICEGATE_SERVER__PORT): must be a whole number (not 'eighty')"
            in str(info.value))


def test_check_reports_every_problem_of_a_file_in_one_run(tmp_path):
    """A model error no longer hides the action's own: bad name, unknown action key and a
    query parameter the query never uses, all at once, in line order, in plain words."""
    directory = tmp_path / "defs"
    directory.mkdir()
    (directory / "bad.yaml").write_text(textwrap.dedent("""\
        name: Bad Name
        descripton: typo
        action:
          type: sql
          database: app
          query: SELECT :a
          params: {a: 1, b: 2}
    """))
    (directory / "types.yaml").write_text("name: t\naction: {type: htp, url: 'http://x/'}\n")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[definitions]\ndir = "{directory}"\n\n[databases.app]\n'
                   f'url = "sqlite:///{tmp_path / "app.db"}"\n')
    done = run_command([SERVICEGATE, "check", "-c", str(cfg)], cwd=tmp_path,
                       env=_env(tmp_path), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    bad = [line for line in lines if line.startswith(str(directory / "bad.yaml"))]
    assert [line.split(":")[1] for line in bad] == ["1", "2", "7"], bad
    assert "must match pattern '^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$'" in bad[0]  # verbatim
    assert "descripton: unknown key; did you mean 'description'?" in bad[1]
    assert "action.params: not used by the query: b" in bad[2]
    assert any("action: unknown type 'htp'; did you mean 'http'?" in line for line in lines)
    assert f"({directory})" in done.stdout  # the configured directory, none given


def test_help_is_printed_as_written_and_without_the_database_stack(tmp_path):
    done = run_command([SERVICEGATE, "serve", "-h"], cwd=tmp_path, env=_env(tmp_path),
                       timeout=60)
    assert done.returncode == 0
    assert "listen address ([server] host)" in done.stdout
    probe = ("import sys, servicegate.cli.main; "
             "print(sorted(m for m in ('sqlalchemy', 'alembic', 'aiohttp') if m in sys.modules))")
    done = run_command([sys.executable, "-c", probe], cwd=tmp_path, env=_env(tmp_path),
                       timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_commands_say_which_configuration_and_definitions_they_use(tmp_path):
    done = run_command([SERVICEGATE, "worker"], cwd=tmp_path, env=_env(tmp_path), timeout=60)
    assert done.returncode == 2
    assert "config: no configuration file" in done.stderr
    assert "the definitions directory definitions does not exist" in done.stderr
    (tmp_path / "definitions").mkdir()
    cfg = tmp_path / "servicegate.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "gw.db"}"\n')
    done = run_command([SERVICEGATE, "migrate"], cwd=tmp_path, env=_env(tmp_path), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "config: configuration from servicegate.toml" in done.stderr


def test_unknown_scopes_are_refused_with_the_known_ones(tmp_path):
    (tmp_path / "definitions").mkdir()
    (tmp_path / "definitions" / "crm.yaml").write_text(
        "name: crm\nauth: {scopes: [crm.read]}\naction: {type: static}\n")
    cfg = tmp_path / "servicegate.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "gw.db"}"\n')
    env = _env(tmp_path)
    done = run_command([SERVICEGATE, "clients", "create", "typo", "--scope", "servcies"],
                       cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2
    assert "unknown scope 'servcies'; did you mean 'services'?" in done.stderr
    assert "crm.read" in done.stderr and "services:crm" in done.stderr  # the known ones
    done = run_command([SERVICEGATE, "clients", "create", "partner", "--json", "--scope",
                        "services:crm", "--scope", "crm.read"], cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["clientId"] == created["client_id"] and created["apiKey"].startswith("sgk_")
    assert {"clientSecret", "keyId", "client_secret", "api_key"} <= created.keys()


async def test_the_admin_api_refuses_unknown_scopes(gateway):
    h = {"X-API-Key": gateway.admin_key}
    r = await gateway.client.post("/admin/clients", headers=h,
                                  json={"name": "typo", "scopes": ["webhook"]})
    body = assert_problem(r, 400)
    assert body["errors"][0]["pointer"] == "/scopes"
    assert "did you mean 'webhooks'?" in body["errors"][0]["message"]
    r = await gateway.client.post("/admin/clients", headers=h,
                                  json={"name": "fine", "scopes": ["webhooks"]})
    assert r.status_code == 201, r.text
