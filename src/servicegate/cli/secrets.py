"""`servicegate secrets rotate`: a new sealing key, and every stored secret sealed under it."""

from __future__ import annotations

import os

from servicegate import secretbox
from servicegate.cli.common import console, fail, note, run
from servicegate.cli.database import migrated_engine
from servicegate.config import Settings
from servicegate.queue import LeaseQueue
from servicegate.storage.schema import deliveries
from servicegate.webhooks.store import WebhookStore


def rotate(settings: Settings, *, reseal_only: bool) -> None:
    key_file = settings.secrets.key_file
    try:
        if os.environ.get(secretbox.ENV):
            if not reseal_only:
                note(f"{secretbox.ENV} is set, so no key is added here: the first key it lists "
                     "seals. Sealing every stored secret under that key.")
        elif not reseal_only:
            new, kept = secretbox.add_key(key_file)
            console.print(f"new key {new} in {key_file}; kept for opening: {', '.join(kept)}",
                          highlight=False)
        box = secretbox.SecretBox.load(key_file)
    except secretbox.SecretKeyError as exc:
        raise fail(str(exc)) from None

    async def reseal() -> tuple[int, list[str]]:
        async with migrated_engine(settings) as engine:
            store = WebhookStore(engine, LeaseQueue(engine, deliveries), box)
            return await store.reseal()

    count, failures = run(reseal)
    console.print(f"sealing with key {box.current}; {count} stored secret"
                  f"{'' if count == 1 else 's'} sealed again", highlight=False)
    if failures:
        for failure in failures:
            note(failure, label="not sealed again")
        raise fail(f"{len(failures)} stored secrets could not be opened with the key ring")
