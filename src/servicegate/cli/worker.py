"""`servicegate worker`: run the queue workers (webhook deliveries, async jobs) without HTTP."""

from __future__ import annotations

import asyncio
import signal

import structlog

from servicegate import logs
from servicegate.cli.lifecycle import announce, node_data
from servicegate.config import Settings
from servicegate.runtime import Runtime, settle_heap
from servicegate.storage.migrate import upgrade

log = structlog.get_logger("servicegate.worker")


async def run_worker(settings: Settings, workers: int) -> None:
    runtime = await Runtime.start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await upgrade(runtime.engine, runtime.webhooks.store.box)
        await announce(settings, "procsrvstartup", node_data(workers=workers))
        runtime.start_workers(webhook_workers=workers)
        settle_heap()
        log.info("worker_started", webhook_workers=workers)
        while not stop.is_set():
            dead = runtime.dead_workers()
            if dead:
                raise RuntimeError(f"background workers died: {', '.join(dead)}")
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
    finally:
        await runtime.stop()
        await announce(settings, "procsrvshutdown", node_data(workers=workers))
        log.info("worker_stopped")


def worker(settings: Settings, workers: int | None) -> None:
    logs.configure(settings.logging.level, settings.logging.format)
    count = workers if workers is not None else max(settings.webhooks.workers, 1)
    try:
        import uvloop

        uvloop.run(run_worker(settings, count))
    except ImportError:  # pragma: no cover - uvloop is not on Windows
        asyncio.run(run_worker(settings, count))
