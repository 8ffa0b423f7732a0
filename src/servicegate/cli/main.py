"""Entry point of the `servicegate` command."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from servicegate import __version__
from servicegate.cli import clients, definitions, identities
from servicegate.cli.common import ConfigOption, console, definitions_in_use, run, settings_from

app = typer.Typer(
    help="ServiceGate: a self-hosted gateway for custom services, callbacks, identity search "
    "and webhooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts name `[server] host` and the like: no markup
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(clients.app, name="clients")
app.command("check")(definitions.check)
app.command("schema")(definitions.schema)
app.add_typer(identities.app, name="identities")
keys_app = typer.Typer(help="Token-signing keys.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(keys_app, name="keys")
secrets_app = typer.Typer(help="Encryption of stored secrets (webhook secrets).",
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(secrets_app, name="secrets")


@app.command()
def serve(
    config: Path | None = ConfigOption,
    host: str | None = typer.Option(None, help="listen address ([server] host)"),
    port: int | None = typer.Option(None, help="listen port ([server] port)"),
    workers: int | None = typer.Option(None, help="worker processes ([server] workers)"),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="skip migrations at start"),
) -> None:
    """Run the gateway (migrates the database first)."""
    # Command-line overrides travel to worker processes as environment variables.
    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"SERVICEGATE_SERVER__{key}"] = str(value)
    settings = settings_from(config, announce=True)
    definitions_in_use(settings)
    from servicegate.cli.serve import serve as run_server

    run_server(settings, migrate=not no_migrate)


@app.command()
def worker(
    config: Path | None = ConfigOption,
    workers: int | None = typer.Option(None, min=1, max=64,
                                       help="delivery workers ([webhooks] workers, at least 1)"),
) -> None:
    """Deliver webhooks without serving HTTP (run as many as you like, on any node)."""
    settings = settings_from(config, announce=True)
    definitions_in_use(settings)
    from servicegate.cli.worker import worker as run_worker

    run_worker(settings, workers)


@app.command()
def migrate(config: Path | None = ConfigOption) -> None:
    """Create or upgrade the database schema to the current version."""
    settings = settings_from(config, announce=True)
    from servicegate.cli.database import migrated_engine
    from servicegate.storage.migrate import current_revision

    async def go() -> str | None:
        async with migrated_engine(settings) as engine:
            return await current_revision(engine)

    console.print(f"database at revision {run(go)}", highlight=False)


@app.command()
def demo(
    config: Path | None = ConfigOption,
    env: bool = typer.Option(False, "--env", help="print only `export` lines for a shell "
                             "(BASE, KEY, ADMIN, CLIENT_ID, CLIENT_SECRET, SERVICEGATE_CONFIG)"),
) -> None:
    """Migrate, create the demo client once (every scope) and print its credentials."""
    from servicegate.cli.demo import demo as run_demo

    run_demo(settings_from(config), env_only=env)


@keys_app.command("rotate")
def keys_rotate(config: Path | None = ConfigOption) -> None:
    """Start signing with a new key; the old public key stays published until its tokens expire."""
    from servicegate.auth import keyset

    settings = settings_from(config)
    new, old = keyset.rotate(settings.auth.signing_key_path, settings.auth.token_ttl)
    console.print(f"signing with {new}" + (f"; {old} published until its tokens expire"
                                           if old else ""), highlight=False)


@secrets_app.command("rotate")
def secrets_rotate(
    config: Path | None = ConfigOption,
    reseal_only: bool = typer.Option(
        False, "--reseal-only",
        help="add no key: seal everything under the current one (after putting a new key "
        "first in SERVICEGATE_SECRETS_KEY)"),
) -> None:
    """Seal stored secrets under a new key. Older keys stay in the key file, so values sealed
    under them (by a node that has not seen the new key yet) still open."""
    from servicegate.cli.secrets import rotate

    rotate(settings_from(config, announce=True), reseal_only=reseal_only)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
