"""Identity import rate by bulk-load path (`storage/bulk_load.py`): the engine's Core inserts
against the database driver's bulk path, alternated in one run on the same generated file.

    .venv/bin/python -m bench.identity_load                   (200,000 identities, 2 rounds)
    .venv/bin/python -m bench.identity_load --size 50000 --rounds 3 --backends sqlite

Each import runs as `servicegate identities import` does (an empty database, indexes dropped and
rebuilt, parse worker processes, ANALYZE), in this process, into a fresh SQLite file or a fresh
PostgreSQL database (created on the server of BENCH_POSTGRES_URL and dropped afterwards).
Prints identities/s per path and round; compare only figures of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import orjson

from servicegate.identity import generator
from servicegate.identity.bulk import deferred_indexes
from servicegate.identity.importer import Importer, jsonl_records
from servicegate.identity.parse_pool import default_workers
from servicegate.identity.store import IdentityStore
from servicegate.storage.bulk_load import BulkLoad, EngineBulkLoad, driver_bulk_load
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade

PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
INDEX_BUILDS = max(1, min(4, os.cpu_count() or 1))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def import_once(url: str, data: Path, path: str) -> float:
    """identities/s for one import of `data` into the empty database at `url`."""
    engine = create_engine(url, pool_size=2)
    try:
        await upgrade(engine)
        loader: BulkLoad = EngineBulkLoad() if path == "engine" else driver_bulk_load(engine)
        store = IdentityStore(engine, loader)
        started = time.perf_counter()
        with data.open("rb", buffering=1 << 20) as stream:
            async with deferred_indexes(engine, parallel=INDEX_BUILDS) as initial:
                summary = await Importer(store, 1000, new=initial,
                                         workers=default_workers()).run(jsonl_records(stream))
            await store.analyze()
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    assert summary.rejected == 0, summary.rejections[:3]
    return summary.imported / elapsed


def run(backend: str, workdir: Path, data: Path, path: str) -> float:
    if backend == "sqlite":
        db = workdir / f"{path}-{secrets.token_hex(3)}.db"
        try:
            return asyncio.run(import_once(f"sqlite:///{db}", data, path))
        finally:
            for leftover in workdir.glob(db.name + "*"):
                leftover.unlink()
    name = f"sg_bench_load_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        return asyncio.run(import_once(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, data, path))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sg-bench-load-"))
    try:
        data = workdir / "identities.jsonl"
        with data.open("wb") as out:
            for item in generator.identities(args.size, 42):
                out.write(orjson.dumps(item) + b"\n")
        print(f"### Identity import by bulk-load path ({args.size:,} identities, identities/s)\n")
        print("| backend | round | engine (Core executemany) | driver bulk path | driver/engine |"
              " load average |")
        print("|---|---:|---:|---:|---:|---:|")
        for backend in args.backends.split(","):
            for n in range(1, args.rounds + 1):
                engine = run(backend, workdir, data, "engine")
                driver = run(backend, workdir, data, "driver")
                print(f"| {backend} | {n} | {engine:,.0f} | {driver:,.0f} | "
                      f"{driver / engine:.2f}x | {os.getloadavg()[0]:.1f} |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
