"""Shared CLI plumbing: loading settings (exit 2 naming the key), running async work."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from servicegate.config import CONFIG_ENV, ConfigError, Settings, load_settings

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

ConfigOption = typer.Option(
    None, "--config", "-c", help="servicegate.toml to use (or set SERVICEGATE_CONFIG)",
    envvar=CONFIG_ENV,
)


def settings_from(config: Path | None) -> Settings:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    try:
        return load_settings()
    except ConfigError as exc:
        err_console.print(f"[red]servicegate:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]
