"""Service definitions under load: `static` vs a bare ASGI app, `http` vs nginx and a minimal proxy.

    .venv/bin/python -m bench.definitions            (BENCH_DURATION seconds per point)
    BENCH_COMPARE_SRC=/path/to/other/checkout/src .venv/bin/python -m bench.definitions

Everything runs on this machine in one go, one worker per server, wrk sharing the cores:
1 KB JSON upstream (nginx) called directly, nginx `proxy_pass` with keep-alive, a minimal
granian + aiohttp proxy (the Python baseline), the gateway's `http` definition; and a bare
ASGI app (granian) vs the gateway's authenticated `/services/ping` and `static` definition.
Throughput at 64 connections, p50/p99 at 8 connections. Compare only ratios within a run.
BENCH_COMPARE_SRC adds the same three gateway rows for another checkout's `src` (e.g. main),
so a change is measured against its baseline in the same run; BENCH_ROUNDS=N measures every
target N times in turn and reports each target's median round (the machine may be shared).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform

from bench.harness import (
    DURATION,
    ROOT,
    TABLE_HEAD,
    WrkResult,
    free_port,
    gateway,
    granian_app,
    measure,
    nginx,
    require_tools,
    row,
)

PAYLOAD = json.dumps({"items": [{"id": i, "name": f"customer {i:03d}", "city": "Lund"}
                                for i in range(21)]})[:1000]
PAYLOAD = json.dumps({"data": PAYLOAD})  # about 1 KB of JSON

Results = dict[str, tuple[WrkResult, WrkResult]]
Targets = dict[str, tuple[str, dict[str, str]]]  # name: (url, headers)
Runs = dict[str, list[tuple[WrkResult, WrkResult]]]  # name: one (throughput, latency) a round
MINIMAL = "minimal proxy: bare ASGI + aiohttp (baseline)"
BARE = "bare ASGI app `{}` (baseline)"


def _nginx_conf(upstream: int) -> str:
    """One nginx worker: the 1 KB JSON upstream and, on {port}, proxy_pass to it."""
    body = PAYLOAD.replace("'", "\\'")
    return f"""upstream json1k {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{ listen 127.0.0.1:{upstream};
    location / {{ default_type application/json; return 200 '{body}'; }} }}
  server {{ listen 127.0.0.1:{{port}};
    location / {{ proxy_pass http://json1k; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }} }}"""


def _definitions(upstream: int) -> dict[str, str]:
    return {"bench.yaml": f"""\
name: bench-static
methods: [GET]
action: {{type: static, body: {{}}}}
---
name: bench-http
methods: [GET]
action: {{type: http, url: "http://127.0.0.1:{upstream}/{{{{ subpath }}}}"}}
"""}


def _gateway_targets(stack: contextlib.ExitStack, upstream: int, label: str = "",
                     **env: str) -> Targets:
    gw = stack.enter_context(gateway(definitions=_definitions(upstream), **env))
    key = {"X-API-Key": gw.create_client("bench", "services")["api_key"]}
    return {
        f"ServiceGate /services/ping{label}": (f"{gw.url}/services/ping", key),
        f"ServiceGate `static` definition{label}": (f"{gw.url}/services/bench-static", key),
        f"ServiceGate `http` definition{label}": (f"{gw.url}/services/bench-http", key),
    }


def _median(runs: list[tuple[WrkResult, WrkResult]]) -> tuple[WrkResult, WrkResult]:
    """The round with the median throughput (one round: that round)."""
    return sorted(runs, key=lambda r: r[0].rps)[len(runs) // 2]


def _ratio(runs: Runs, name: str, baseline: str) -> float:
    """Median over rounds of this round's throughput / its baseline's in the same round."""
    ratios = sorted(r[0].rps / b[0].rps for r, b in zip(runs[name], runs[baseline], strict=True))
    return ratios[len(ratios) // 2]


def _summary(runs: Runs, results: Results, label: str = "") -> None:
    minimal = results[MINIMAL][1]
    direct = results["1 KB upstream (nginx) called directly"][1]
    http_lat = results[f"ServiceGate `http` definition{label}"][1]
    print(f"\n{label.strip(' ()') or 'this checkout'} (median over rounds of the ratio within a "
          "round):")
    print(f"- `static` = {_ratio(runs, f'ServiceGate `static` definition{label}', BARE):.0%} of "
          "the bare ASGI app (target >= 50 %)")
    print(f"- `http` = {_ratio(runs, f'ServiceGate `http` definition{label}', MINIMAL):.0%} of "
          "the minimal proxy's throughput (target >= 80 %)")
    print(f"- added p50 latency of `http` over the upstream called directly: "
          f"{http_lat.p50_ms - direct.p50_ms:.3f} ms (target < 1.5 ms); over the minimal "
          f"proxy: {http_lat.p50_ms - minimal.p50_ms:.3f} ms")


def main() -> None:
    require_tools("wrk", "nginx")
    compare = os.environ.get("BENCH_COMPARE_SRC")
    rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "1")))
    upstream = free_port()
    with contextlib.ExitStack() as stack:
        # Every server is up before the first measurement; with BENCH_ROUNDS > 1 the targets
        # are measured in turn, round after round, so a noisy moment hits them all alike.
        proxy = stack.enter_context(nginx(_nginx_conf(upstream)))
        up = f"http://127.0.0.1:{upstream}/"
        minimal_port = stack.enter_context(
            granian_app("bench.definitions_apps:proxy", ROOT, {"BENCH_UPSTREAM": up}))
        bare_port = stack.enter_context(granian_app("bare_asgi:app", ROOT / "bench"))
        baselines: Targets = {
            "1 KB upstream (nginx) called directly": (up, {}),
            "nginx proxy_pass, keep-alive pool": (f"http://127.0.0.1:{proxy}/", {}),
            MINIMAL: (f"http://127.0.0.1:{minimal_port}/", {}),
            BARE: (f"http://127.0.0.1:{bare_port}/", {}),
        }
        gateways = _gateway_targets(stack, upstream)
        if compare:
            gateways.update(_gateway_targets(stack, upstream, f" (compare: {compare})",
                                             PYTHONPATH=compare))
        # each gateway row right after its baseline, so that both see the same moment
        order = [*list(baselines)[:3], *[n for n in gateways if "`http`" in n], BARE,
                 *[n for n in gateways if "`http`" not in n]]
        targets = {name: {**baselines, **gateways}[name] for name in order}
        runs: Runs = {name: [] for name in targets}
        for _ in range(rounds):
            for name, (url, headers) in targets.items():
                runs[name].append(measure(url, headers=headers))
    results: Results = {name: _median(r) for name, r in runs.items()}

    print(f"### Service definitions ({platform.node()}, wrk -t1, {DURATION}s per point, "
          f"one worker per server, median of {rounds} round{'s' if rounds > 1 else ''})\n")
    print(TABLE_HEAD)
    bare = results[BARE][0].rps
    minimal = results[MINIMAL][0].rps
    for name, (tput, lat) in results.items():
        # ratios: the proxies against the minimal proxy, everything else against bare ASGI
        proxied = "http" in name or "proxy" in name or "upstream" in name
        print(row(name, tput, lat, minimal if proxied else bare))
    _summary(runs, results)
    if compare:
        _summary(runs, results, f" (compare: {compare})")


if __name__ == "__main__":
    main()
