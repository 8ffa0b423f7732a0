"""`servicegate serve`: migrate, make sure a signing key exists, then run granian."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from servicegate.auth import keyset
from servicegate.cli.common import console, run
from servicegate.cli.database import migrated_engine
from servicegate.config import Settings


def prepare(settings: Settings) -> None:
    """Work done once per start, before worker processes exist."""

    async def migrate() -> None:
        async with migrated_engine(settings):
            pass

    run(migrate)
    keyset.ensure(settings.auth.signing_key_path)


def _multiprocess_metrics(workers: int) -> Path | None:
    """Several worker processes share metrics through files (prometheus multiprocess mode)."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    directory = Path("var") / f"prometheus-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())
    return directory


def serve(settings: Settings, *, migrate: bool = True) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    server = settings.server
    metrics_dir = _multiprocess_metrics(server.workers)
    if migrate:
        prepare(settings)
    console.print(
        f"ServiceGate listening on http://{server.host}:{server.port}{server.base_path} "
        f"({server.workers} worker{'s' if server.workers > 1 else ''})",
        highlight=False,
    )
    # Imported only now: prometheus_client picks its multiprocess mode at import time.
    from servicegate.cli.lifecycle import announce, node_data

    # Raised here, in the supervising process, so N worker processes raise them once.
    run(lambda: announce(settings, "appsrvstartup", node_data(workers=server.workers)))
    granian = Granian(
        "servicegate.app:create_app",
        factory=True,
        address=server.host,
        port=server.port,
        interface=Interfaces.ASGI,
        workers=server.workers,
        loop=Loops.uvloop,
        log_enabled=True,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=int(server.shutdown_grace) or None,
        backlog=2048,
    )
    try:
        granian.serve()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    run(lambda: announce(settings, "appsrvshutdown", node_data(workers=server.workers)))
