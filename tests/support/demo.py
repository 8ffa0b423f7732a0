"""A gateway started as `make run` starts it: `servicegate demo`, then `servicegate serve`, with
examples/servicegate.toml, in a copy of examples/ (its ./var stays in the test's directory)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from tests.support.processes import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def start_demo_gateway(workdir: Path, **settings: str) -> GatewayProcess:
    shutil.copytree(ROOT / "examples", workdir / "examples")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEGATE_")}
    env.update({
        "SERVICEGATE_CONFIG": "examples/servicegate.toml",
        "SERVICEGATE_SERVER__PORT": str(port),
        "DEMO_CALLBACK_SECRET": "demo-callback-secret",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        **settings,
    })
    gateway = GatewayProcess(workdir, env, port)
    gateway.cli("demo")
    return gateway.start()


def demo_api_key(gateway: GatewayProcess) -> str:
    """The demo client's API key; the client holds every scope."""
    return str(json.loads((gateway.workdir / "var" / "demo-client.json").read_text())["api_key"])
