"""`servicegate check DIR` and `servicegate schema`: definition files for operators and editors."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from servicegate.cli.common import ConfigOption, console, err_console, fail, settings_from


def check(
    directory: Path | None = typer.Argument(
        None, help="Directory of definition files (*.yaml, *.yml); default: [definitions] dir"),
    config: Path | None = ConfigOption,
) -> None:
    """Validate every definition file; print file:line: reason; exit 1 on any error."""
    from servicegate import logs
    from servicegate.definitions.registry import DefinitionRegistry

    settings = settings_from(config)
    directory = directory or settings.definitions.dir
    logs.configure("critical", "console")  # problems are printed below, once each
    if not directory.is_dir():
        raise fail(f"{directory} is not a directory", 2)
    registry = DefinitionRegistry(settings, directory)
    report = registry.load()
    for problem in sorted(report.problems, key=lambda p: (str(p.file), p.line or 0)):
        err_console.print(str(problem), soft_wrap=True)
    for name in report.loaded:
        definition = registry.get(name)
        assert definition is not None
        missing = [v for v in _secret_envs(definition) if not _env_set(v)]
        for variable in missing:
            err_console.print(f"{definition.source}:{definition.line or 1}: warning: "
                              f"environment variable {variable} is not set here", soft_wrap=True)
    broken = len({p.file for p in report.problems})
    console.print(f"{len(report.loaded)} definition(s) OK"
                  + (f", {len(report.problems)} error(s) in {broken} file(s)" if broken else "")
                  + f" ({directory})")
    if report.problems:
        raise typer.Exit(1)


def schema(
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write here instead of standard output"),
) -> None:
    """Print (or write) the JSON Schema of definition files, for editor completion."""
    from servicegate.definitions.models import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        console.out(text, end="")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        console.print(f"wrote {output}")


def _secret_envs(definition: object) -> list[str]:
    verifier = getattr(definition, "verifier", None)
    return [verifier.secret_env] if verifier is not None else []


def _env_set(name: str) -> bool:
    import os

    return bool(os.environ.get(name))
