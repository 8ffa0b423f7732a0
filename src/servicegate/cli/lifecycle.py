"""Start/stop events raised once per command (not once per granian worker process)."""

from __future__ import annotations

import os
import socket
from typing import Any

import structlog

from servicegate import __version__
from servicegate.config import Settings
from servicegate.secretbox import SecretBox
from servicegate.storage.engine import create_engine
from servicegate.webhooks.service import WebhookService

log = structlog.get_logger("servicegate.lifecycle")


def node_data(**extra: Any) -> dict[str, Any]:
    return {"node": socket.gethostname(), "pid": os.getpid(), "version": __version__, **extra}


async def announce(settings: Settings, event: str, data: dict[str, Any]) -> None:
    """Publish a gateway event from a short-lived connection; never stops the command."""
    engine = create_engine(settings.database.url, pool_size=1)
    try:
        box = SecretBox.load(settings.secrets.key_file)
        await WebhookService(engine, settings.webhooks, box).publisher.publish(event, data)
    except Exception as exc:
        log.warning("announce_failed", event_name=event, error=str(exc))
    finally:
        await engine.dispose()
