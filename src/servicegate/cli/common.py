"""Shared CLI plumbing: loading settings (exit 2 naming the key), printing, running async work.

Every console prints text as it is: user input, file contents and library messages (a regular
expression, `[server]`) may look like rich markup and must not be interpreted as such. Styles
come from `Text` objects, never from markup in strings.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from servicegate.config import CONFIG_ENV, ConfigError, config_file_in_use, load_settings

if TYPE_CHECKING:
    from servicegate.config import Settings

T = TypeVar("T")
console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)

ConfigOption = typer.Option(
    None, "--config", "-c", help="servicegate.toml to use (or set SERVICEGATE_CONFIG)",
    envvar=CONFIG_ENV,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `servicegate: <message>` on stderr; raise what this returns."""
    err_console.print(Text.assemble(("servicegate: ", "red"), message), soft_wrap=True)
    return typer.Exit(code)


def note(message: str, label: str = "note") -> None:
    err_console.print(Text.assemble((f"{label}: ", "yellow"), message), soft_wrap=True)


def settings_from(config: Path | None, *, announce: bool = False) -> Settings:
    """The settings of this command (exit 2 on an invalid value); with `announce`, say on
    stderr which file they come from, so a command run without `--config` cannot silently use
    other settings than the gateway it works with."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    if announce:
        used = config_file_in_use()
        note(f"configuration from {used}" if used is not None else
             "no configuration file (./servicegate.toml or SERVICEGATE_CONFIG): defaults and "
             "SERVICEGATE_* environment variables only", label="config")
    return settings


def definitions_in_use(settings: Settings) -> None:
    """Say which definitions directory this command serves; a missing one stops it (exit 2),
    an empty one is worth a warning: either way nothing would be served at `/services`."""
    directory = settings.definitions.dir
    if not directory.is_dir():
        raise fail(f"the definitions directory {directory} does not exist ([definitions] dir; "
                   "create it, or point the setting at your definition files)", 2)
    files = [p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    if files:
        note(f"definitions from {directory} ({len(files)} file{'s' if len(files) > 1 else ''})",
             label="definitions")
    else:
        note(f"{directory} holds no definition files (*.yaml, *.yml): nothing is served "
             "at /services until some are added", label="warning")


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]
