"""An in-process gateway serving definitions written by the test into a real directory."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx

from servicegate.app import create_app
from servicegate.config import Settings
from servicegate.runtime import Runtime
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade


@dataclass
class DefinitionsGateway:
    runtime: Runtime
    client: httpx.AsyncClient
    directory: Path
    key: str  # API key with the `services` and `callback` scopes

    def write(self, filename: str, text: str) -> Path:
        path = self.directory / filename
        path.write_text(textwrap.dedent(text))
        return path

    async def define(self, filename: str, text: str) -> None:
        self.write(filename, text)
        report = await self.runtime.definitions.reload()
        assert not report.problems, [str(p) for p in report.problems]

    async def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"X-API-Key": self.key, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)


def settings_for(tmp_path: Path, **sections: dict) -> Settings:
    base: dict = {
        "database": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        "auth": {"signing_key_path": str(tmp_path / "keys")},
        "secrets": {"key_file": str(tmp_path / "secrets.key")},
        "definitions": {"dir": str(tmp_path / "definitions"), "watch": False},
        "databases": {"app": {"url": f"sqlite:///{tmp_path / 'app.db'}"}},
        "logging": {"format": "console"},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return Settings(**base)


async def start_gateway(settings: Settings) -> tuple[DefinitionsGateway, httpx.AsyncClient]:
    Path(settings.definitions.dir).mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database.url)
    await upgrade(engine)
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime
    created = await runtime.clients.create("caller", ["services", "callback"])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                               base_url="http://gw")
    gw = DefinitionsGateway(runtime, client, Path(settings.definitions.dir), created.api_key)
    return gw, client
