#!/usr/bin/env bash
# `make bench`: every benchmark, each against its baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || ! [ -x /usr/sbin/nginx ]; then
  echo "installing wrk and nginx-light (Debian packages) for the benchmarks"
  apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null
fi
mkdir -p bench/out
PY=.venv/bin/python
# uvicorn is only a comparison point for the server choice, not a dependency.
$PY -m pip install -q "uvicorn[standard]" >/dev/null 2>&1 || true
$PY -m bench.ping | tee bench/out/ping.md
for extra in definitions webhooks identity jobs login_flood; do
  if [ -f "bench/$extra.py" ]; then
    $PY -m "bench.$extra" | tee "bench/out/$extra.md"
  fi
done
# the asynchronous jobs benchmark again on PostgreSQL (the scale-out backend), if reachable
if PGURL=$($PY -m bench.postgres); then
  $PY -m bench.jobs --database "$PGURL" | tee bench/out/jobs-postgresql.md
fi
# instructions per request under valgrind (repeatable where wall-clock figures are noisy)
if command -v valgrind >/dev/null; then
  $PY -m bench.services_instructions | tee bench/out/services_instructions.md
fi
echo "Results written to bench/out/; copy them into bench/RESULTS.md with the date."
