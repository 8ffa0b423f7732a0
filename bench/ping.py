"""Authenticated `GET /services/ping` against a bare ASGI app and nginx, in one run.

    .venv/bin/python -m bench.ping      (BENCH_DURATION=10 by default)
"""

from __future__ import annotations

import platform
import shutil

from bench.harness import (
    BIN,
    DURATION,
    ROOT,
    TABLE_HEAD,
    free_port,
    gateway,
    granian_app,
    measure,
    nginx,
    process,
    require_tools,
    row,
)


def main() -> None:
    require_tools("wrk", "nginx")
    results = {}
    with nginx("server { listen 127.0.0.1:{port}; location / { default_type application/json;"
               " return 200 '{}'; } }") as port:
        results["nginx `return 200 '{}'`"] = measure(f"http://127.0.0.1:{port}/")
    with granian_app("bare_asgi:app", ROOT / "bench") as port:
        results["bare ASGI app, granian (baseline)"] = measure(f"http://127.0.0.1:{port}/")
    with gateway() as gw:
        creds = gw.create_client("bench", "services")
        key = {"X-API-Key": creds["api_key"]}
        results["ServiceGate /services/ping, X-API-Key"] = measure(
            f"{gw.url}/services/ping", headers=key)
        import json
        import urllib.parse
        import urllib.request

        form = urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "client_id": creds["client_id"],
                                       "client_secret": creds["client_secret"]}).encode()
        with urllib.request.urlopen(f"{gw.url}/oauth2/token", data=form) as resp:
            token = json.load(resp)["access_token"]
        results["ServiceGate /services/ping, Bearer JWT"] = measure(
            f"{gw.url}/services/ping", headers={"Authorization": f"Bearer {token}"})
        results["ServiceGate /healthz (no auth)"] = measure(f"{gw.url}/healthz")
        if shutil.which("uvicorn", path=str(BIN)):
            # The same app on uvicorn: why `serve` runs granian.
            port = free_port()
            args = [str(BIN / "uvicorn"), "--factory", "servicegate.app:create_app",
                    "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                    "--no-access-log", "--log-level", "warning"]
            with process(args, env=gw.env, cwd=gw.workdir,
                         ready_url=f"http://127.0.0.1:{port}/healthz"):
                results["ServiceGate /services/ping on uvicorn (comparison)"] = measure(
                    f"http://127.0.0.1:{port}/services/ping", headers=key)

    baseline = results["bare ASGI app, granian (baseline)"][0].rps
    print(f"### Ping ({platform.node()}, wrk -t1, {DURATION}s per point, one worker each)\n")
    print(TABLE_HEAD)
    for name, (tput, lat) in results.items():
        print(row(name, tput, lat, baseline))
    nginx_rps = results["nginx `return 200 '{}'`"][0].rps
    ping_rps = results["ServiceGate /services/ping, X-API-Key"][0].rps
    print(f"\nAuthenticated ping = {ping_rps / baseline:.0%} of bare ASGI, "
          f"{ping_rps / nginx_rps:.0%} of nginx (target: >= 50% of bare ASGI).")


if __name__ == "__main__":
    main()
