"""`servicegate clients ...`: create, list, show, disable, enable, add-key, revoke-key, delete."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from servicegate.auth.clients import ClientExists, ClientStore, NotFound
from servicegate.cli.common import ConfigOption, console, err_console, run, settings_from
from servicegate.cli.database import migrated_engine

app = typer.Typer(help="Manage API clients and their credentials.", no_args_is_help=True)


def _scopes(values: list[str]) -> list[str]:
    return [s for v in values for s in v.replace(",", " ").split() if s]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]servicegate:[/red] {message}", highlight=False)
    return typer.Exit(code)


@app.command()
def create(
    name: str,
    scope: list[str] = typer.Option([], "--scope", "-s", help="scope to grant (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="print client_id, client_secret, api_key"),
    config: Path | None = ConfigOption,
) -> None:
    """Create a client; its secret and first API key are printed once."""
    settings = settings_from(config)

    async def go():  # type: ignore[no-untyped-def]
        async with migrated_engine(settings) as engine:
            return await ClientStore(engine).create(name, _scopes(scope))

    try:
        created = run(go)
    except ClientExists:
        raise _fail(f"a client named {name!r} already exists") from None
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    if as_json:
        print(json.dumps({"client_id": created.client.id, "client_secret": created.client_secret,
                          "api_key": created.api_key}))
        return
    console.print(f"client_id:     {created.client.id}", highlight=False)
    console.print(f"client_secret: {created.client_secret}", highlight=False)
    console.print(f"api_key:       {created.api_key}  (key id {created.key_id})", highlight=False)
    console.print(f"scopes:        {' '.join(created.client.scopes) or '-'}", highlight=False)
    console.print("[yellow]The secret and key are shown only now; store them safely.[/yellow]")


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json"), config: Path | None = ConfigOption
) -> None:
    """List clients."""
    settings = settings_from(config)

    async def go():  # type: ignore[no-untyped-def]
        async with migrated_engine(settings) as engine:
            return await ClientStore(engine).list()

    records = run(go)
    if as_json:
        print(json.dumps([r.to_json() for r in records]))
        return
    table = Table("id", "name", "scopes", "enabled", "created")
    for r in records:
        table.add_row(r.id, r.name, " ".join(r.scopes), "yes" if r.enabled else "no",
                      r.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@app.command()
def show(client: str, config: Path | None = ConfigOption) -> None:
    """Show one client (by id or name) and its keys."""
    settings = settings_from(config)

    async def go():  # type: ignore[no-untyped-def]
        async with migrated_engine(settings) as engine:
            store = ClientStore(engine)
            record = await store.get(client)
            return record, await store.keys(record.id)

    try:
        record, keys = run(go)
    except NotFound:
        raise _fail(f"no client {client!r}") from None
    print(json.dumps({**record.to_json(), "keys": [k.to_json() for k in keys]}, indent=2))


def _set_enabled(client: str, enabled: bool, config: Path | None) -> None:
    settings = settings_from(config)

    async def go():  # type: ignore[no-untyped-def]
        async with migrated_engine(settings) as engine:
            return await ClientStore(engine).update(client, enabled=enabled)

    try:
        record = run(go)
    except NotFound:
        raise _fail(f"no client {client!r}") from None
    console.print(f"{record.id} ({record.name}) {'enabled' if enabled else 'disabled'}",
                  highlight=False)


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
    settings = settings_from(config)

    async def go():  # type: ignore[no-untyped-def]
        async with migrated_engine(settings) as engine:
            return await ClientStore(engine).add_key(client)

    try:
        key, api_key = run(go)
    except NotFound:
        raise _fail(f"no client {client!r}") from None
    console.print(f"key_id:  {key.id}\napi_key: {api_key}", highlight=False)


@app.command("revoke-key")
def revoke_key(client: str, key_id: str, config: Path | None = ConfigOption) -> None:
    """Revoke one API key of a client."""
    settings = settings_from(config)

    async def go():  # type: ignore[no-untyped-def]
        async with migrated_engine(settings) as engine:
            return await ClientStore(engine).revoke_key(client, key_id)

    try:
        run(go)
    except NotFound:
        raise _fail(f"no active key {key_id!r} for client {client!r}") from None
    console.print(f"revoked {key_id}", highlight=False)


@app.command()
def delete(
    client: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
    config: Path | None = ConfigOption,
) -> None:
    """Delete a client and all its keys."""
    settings = settings_from(config)
    if not yes:
        typer.confirm(f"Delete client {client} and all its keys?", abort=True)

    async def go():  # type: ignore[no-untyped-def]
        async with migrated_engine(settings) as engine:
            return await ClientStore(engine).delete(client)

    try:
        record = run(go)
    except NotFound:
        raise _fail(f"no client {client!r}") from None
    console.print(f"deleted {record.id} ({record.name})", highlight=False)
