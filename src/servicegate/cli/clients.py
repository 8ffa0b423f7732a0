"""`servicegate clients ...`: create, list, show, disable, enable, add-key, revoke-key, delete."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from servicegate.cli.common import ConfigOption, console, fail, run, settings_from

if TYPE_CHECKING:
    from servicegate.config import Settings

T = TypeVar("T")

app = typer.Typer(help="Manage API clients and their credentials.", no_args_is_help=True,
                  rich_markup_mode=None)


def _scopes(values: list[str]) -> list[str]:
    return [s for v in values for s in v.replace(",", " ").split() if s]


def with_store(settings: Settings, use: Callable[[Any], Awaitable[T]]) -> T:
    """`use(store)` on the gateway database's client store, migrated first. (Imported here:
    `servicegate --help` must not load the database stack.)"""
    from servicegate.auth.clients import ClientStore
    from servicegate.cli.database import migrated_engine

    async def go() -> T:
        async with migrated_engine(settings) as engine:
            return await use(ClientStore(engine))

    return run(go)


def known_scopes_of(settings: Settings) -> frozenset[str]:
    """The scopes a client of this gateway may hold (its definitions' included)."""
    from servicegate import logs
    from servicegate.auth.scopes import known_scopes
    from servicegate.definitions.registry import DefinitionRegistry

    logs.configure("critical", "console")  # a broken definition file is `check`'s to report
    registry = DefinitionRegistry(settings)
    registry.load()
    return known_scopes(registry.scopes())


@app.command()
def create(
    name: str,
    scope: list[str] = typer.Option([], "--scope", "-s", help="scope to grant (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="print clientId, clientSecret, apiKey "
                                 "and keyId as JSON"),
    config: Path | None = ConfigOption,
) -> None:
    """Create a client; its secret and first API key are printed once."""
    from servicegate.auth.clients import ClientExists
    from servicegate.auth.scopes import validate_scopes

    settings = settings_from(config)
    try:
        scopes = validate_scopes(_scopes(scope), known_scopes_of(settings))
        created = with_store(settings, lambda store: store.create(name, scopes))
    except ClientExists:
        raise fail(f"a client named {name!r} already exists") from None
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    if as_json:
        print(json.dumps(credentials_json(created.client.id, created.client_secret,
                                          created.api_key, created.key_id)))
        return
    console.print(f"client_id:     {created.client.id}")
    console.print(f"client_secret: {created.client_secret}")
    console.print(f"api_key:       {created.api_key}  (key id {created.key_id})")
    console.print(f"scopes:        {' '.join(created.client.scopes) or '-'}")
    console.print("The secret and key are shown only now; store them safely.", style="yellow")


def credentials_json(client_id: str, secret: str, api_key: str, key_id: str) -> dict[str, str]:
    """New credentials in the admin API's names (camelCase); the snake_case names earlier
    versions printed stay beside them for scripts that read those."""
    return {"clientId": client_id, "clientSecret": secret, "apiKey": api_key, "keyId": key_id,
            "client_id": client_id, "client_secret": secret, "api_key": api_key}


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json"), config: Path | None = ConfigOption
) -> None:
    """List clients."""
    records = with_store(settings_from(config), lambda store: store.list())
    if as_json:
        print(json.dumps([r.to_json() for r in records]))
        return
    from rich.table import Table

    table = Table("id", "name", "scopes", "enabled", "created")
    for r in records:
        table.add_row(r.id, r.name, " ".join(r.scopes), "yes" if r.enabled else "no",
                      r.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@app.command()
def show(client: str, config: Path | None = ConfigOption) -> None:
    """Show one client (by id or name) and its keys."""
    from servicegate.auth.clients import NotFound

    async def both(store: Any) -> Any:
        record = await store.get(client)
        return record, await store.keys(record.id)

    try:
        record, keys = with_store(settings_from(config), both)
    except NotFound:
        raise fail(f"no client {client!r}") from None
    print(json.dumps({**record.to_json(), "keys": [k.to_json() for k in keys]}, indent=2))


def _set_enabled(client: str, enabled: bool, config: Path | None) -> None:
    from servicegate.auth.clients import NotFound

    try:
        record = with_store(settings_from(config),
                            lambda store: store.update(client, enabled=enabled))
    except NotFound:
        raise fail(f"no client {client!r}") from None
    console.print(f"{record.id} ({record.name}) {'enabled' if enabled else 'disabled'}")


@app.command()
def disable(client: str, config: Path | None = ConfigOption) -> None:
    """Disable a client: its keys and tokens stop working within seconds on every node."""
    _set_enabled(client, False, config)


@app.command()
def enable(client: str, config: Path | None = ConfigOption) -> None:
    """Enable a disabled client."""
    _set_enabled(client, True, config)


@app.command("add-key")
def add_key(client: str, config: Path | None = ConfigOption) -> None:
    """Add another API key to a client (for rotation); printed once."""
    from servicegate.auth.clients import NotFound

    try:
        key, api_key = with_store(settings_from(config), lambda store: store.add_key(client))
    except NotFound:
        raise fail(f"no client {client!r}") from None
    console.print(f"key_id:  {key.id}\napi_key: {api_key}")


@app.command("revoke-key")
def revoke_key(client: str, key_id: str, config: Path | None = ConfigOption) -> None:
    """Revoke one API key of a client."""
    from servicegate.auth.clients import NotFound

    try:
        with_store(settings_from(config), lambda store: store.revoke_key(client, key_id))
    except NotFound:
        raise fail(f"no active key {key_id!r} for client {client!r}") from None
    console.print(f"revoked {key_id}")


@app.command()
def delete(
    client: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
    config: Path | None = ConfigOption,
) -> None:
    """Delete a client and all its keys."""
    from servicegate.auth.clients import NotFound

    settings = settings_from(config)
    if not yes:
        typer.confirm(f"Delete client {client} and all its keys?", abort=True)
    try:
        record = with_store(settings, lambda store: store.delete(client))
    except NotFound:
        raise fail(f"no client {client!r}") from None
    console.print(f"deleted {record.id} ({record.name})")
