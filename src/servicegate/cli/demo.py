"""`servicegate demo`: migrate, create the demo client once, print its credentials."""

from __future__ import annotations

import json
import os
from pathlib import Path

from servicegate.auth.clients import ClientStore, NotFound
from servicegate.cli.clients import known_scopes_of
from servicegate.cli.common import console, run
from servicegate.cli.database import migrated_engine
from servicegate.config import CONFIG_ENV, Settings, config_file_in_use

DEMO_NAME = "demo"
DEMO_FILE = Path("var/demo-client.json")


async def ensure_demo_client(settings: Settings, path: Path = DEMO_FILE) -> dict[str, str]:
    async with migrated_engine(settings) as engine:
        store = ClientStore(engine)
        if path.exists():
            saved = json.loads(path.read_text())
            try:
                record = await store.get(saved["client_id"])
                if record.enabled:
                    return saved  # type: ignore[no-any-return]
            except NotFound:
                pass
        try:  # a demo client whose secret we no longer have: replace it
            await store.delete(DEMO_NAME)
        except NotFound:
            pass
        # every scope (`services` implies each `services:<name>`)
        scopes = sorted(s for s in known_scopes_of(settings) if not s.startswith("services:"))
        created = await store.create(DEMO_NAME, scopes)
    saved = {
        "client_id": created.client.id,
        "client_secret": created.client_secret,
        "api_key": created.api_key,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(saved, fh, indent=2)
    os.chmod(path, 0o600)
    return saved


DEMO_DATABASE = "demo"
DEMO_CUSTOMERS = [
    (1, "Ada Lindqvist", "Lund", 4200.0, 30),
    (2, "Bertil Nyström", "Malmö", 0.0, 0),
    (3, "Cecilia Ek", "Lund", 12500.5, 95),
    (4, "Nordic Widgets AB", "Stockholm", 880.0, 12),
]


async def seed_demo_database(settings: Settings) -> bool:
    """Create and fill the `customers` table of `[databases.demo]` once; False if unconfigured."""
    from sqlalchemy import text

    from servicegate.storage.engine import create_engine

    configured = settings.databases.get(DEMO_DATABASE)
    if configured is None:
        return False
    engine = create_engine(configured.url, pool_size=1, private=False)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " city TEXT NOT NULL, balance NUMERIC NOT NULL, days_late INTEGER NOT NULL)"))
            count = (await conn.execute(text("SELECT COUNT(*) FROM customers"))).scalar_one()
            if count == 0:
                await conn.execute(
                    text("INSERT INTO customers (id, name, city, balance, days_late) "
                         "VALUES (:id, :name, :city, :balance, :days_late)"),
                    [dict(zip(("id", "name", "city", "balance", "days_late"), row, strict=True))
                     for row in DEMO_CUSTOMERS],
                )
    finally:
        await engine.dispose()
    return True


DEMO_IDENTITIES = 2000


async def seed_demo_identities(settings: Settings, count: int = DEMO_IDENTITIES) -> int:
    """Fill an empty internal identity store with generated identities (seed 1); how many."""
    from servicegate.identity.generator import identities
    from servicegate.identity.importer import Importer
    from servicegate.identity.store import IdentityStore
    from servicegate.storage.bulk_load import driver_bulk_load

    if settings.identity.source != "internal":
        return 0
    async with migrated_engine(settings) as engine:
        store = IdentityStore(engine, driver_bulk_load(engine))
        if await store.count():
            return 0
        summary = await Importer(store).run((n + 1, record, None)
                                            for n, record in enumerate(identities(count, seed=1)))
        await store.analyze()
        return summary.imported


def demo(settings: Settings, *, env_only: bool = False) -> None:
    creds = run(lambda: ensure_demo_client(settings))
    seeded = run(lambda: seed_demo_database(settings))
    people = run(lambda: seed_demo_identities(settings))
    server = settings.server
    base = f"http://{server.host}:{server.port}{server.base_path}"
    config = config_file_in_use()
    exports = [f"export BASE={base}", f"export KEY={creds['api_key']}",
               f"export ADMIN={creds['api_key']}",
               f"export CLIENT_ID={creds['client_id']}",
               f"export CLIENT_SECRET={creds['client_secret']}"]
    if config is not None:
        exports.insert(0, f"export {CONFIG_ENV}={config}")
    if env_only:  # for `eval "$(servicegate demo --env)"`
        print("\n".join(exports))
        return
    console.rule("ServiceGate demo client")
    console.print(f"client_id:     {creds['client_id']}")
    console.print(f"client_secret: {creds['client_secret']}")
    console.print(f"api_key:       {creds['api_key']}")
    console.print(f"(kept in {DEMO_FILE}, mode 0600; the demo client holds every scope)\n")
    console.print("The README's examples use these variables (or: eval \"$(make -s env)\"):")
    for line in exports:
        console.print(f"  {line}", soft_wrap=True)
    console.print("\nTry:")
    console.print("  curl -H \"X-API-Key: $KEY\" $BASE/services/ping", soft_wrap=True)
    console.print('  curl -d grant_type=client_credentials -u "$CLIENT_ID:$CLIENT_SECRET" '
                  "$BASE/oauth2/token", soft_wrap=True)
    if seeded:
        console.print("  curl -H \"X-API-Key: $KEY\" $BASE/services/customers", soft_wrap=True)
    console.print(
        "  curl -G -H \"X-API-Key: $KEY\" $BASE/services/identity "
        "--data-urlencode \"\\$filter=startswith(fullname,'An')\" --data-urlencode '$top=3'",
        soft_wrap=True)
    if people:
        console.print(f"({people} generated demo identities loaded for identity search)")
    console.rule()
