"""Start `servicegate serve` as a user would: a subprocess on a free port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICEGATE = str(Path(sys.executable).with_name("servicegate"))


def run_command(args: list[str], *, cwd: Path | str, env: dict[str, str], timeout: float,
                check: bool = False) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(args, capture_output=True, text=True, timeout=...)`, but in a session
    of its own, and on timeout the whole group is killed. `subprocess.run` kills only the
    command, then waits for its pipes to close: a process it started (the import's parsing
    workers, a server's workers) still holding them would make the test wait forever."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(args, timeout, out, err) from None
    finally:
        if proc.poll() is None:  # an exception (a test's own timeout) while waiting
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done = subprocess.CompletedProcess(args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    workdir: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"gateway-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_command([SERVICEGATE, *args], cwd=self.workdir, env=self.env, timeout=60,
                           check=check)

    def create_client(self, name: str, *scopes: str) -> dict[str, str]:
        args = ["clients", "create", name, "--json"]
        for scope in scopes:
            args += ["--scope", scope]
        return json.loads(self.cli(*args).stdout)

    def start(self, *extra: str, wait: float = 30.0) -> GatewayProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SERVICEGATE, "serve", "--port", str(self.port), *extra],
            cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode if self.proc else None


def gateway_env(workdir: Path, database_url: str, **settings: str) -> dict[str, str]:
    # the gateway refuses to start without its definitions directory; tests add files to it
    (workdir / "definitions").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEGATE_")}
    env.update(
        {
            "SERVICEGATE_DATABASE__URL": database_url,
            "SERVICEGATE_AUTH__SIGNING_KEY_PATH": str(workdir / "keys"),
            "SERVICEGATE_SECRETS__KEY_FILE": str(workdir / "secrets.key"),
            "SERVICEGATE_DEFINITIONS__DIR": str(workdir / "definitions"),
            "SERVICEGATE_WEBHOOKS__ALLOW_PRIVATE_NETWORKS": "true",
            "SERVICEGATE_LOGGING__FORMAT": "json",
        }
    )
    env.update(settings)
    return env
