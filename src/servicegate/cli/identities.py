"""`servicegate identities import FILE` and `servicegate identities generate N`."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from servicegate.cli.common import ConfigOption, console, err_console, fail, note, run, settings_from

READ_BUFFER = 1 << 20
INDEX_BUILDS = max(1, min(4, os.cpu_count() or 1))  # PostgreSQL index rebuilds at once

app = typer.Typer(help="Identity search data: import and generate identities.",
                  no_args_is_help=True, rich_markup_mode=None)


def _fail(message: str, code: int = 2) -> typer.Exit:
    return fail(message, code)


def _warn_if_external(settings) -> None:  # type: ignore[no-untyped-def]
    if settings.identity.source == "sql":
        note('[identity] source = "sql": searches read the external table, not the '
             "identities loaded here")


BatchSizeOption = typer.Option(1000, min=1, max=10000, help="identities per transaction")
WorkersOption = typer.Option(None, "--workers", min=0, max=32,
                             help="processes that parse while the database writes (default: one "
                                  "per core but one, at most 4; 0 = parse in this process)")


@app.command("import")
def import_(
    file: str = typer.Argument(..., help="a .jsonl or .csv file, or - for JSON Lines on stdin"),
    format: str | None = typer.Option(None, "--format", "-f", help="jsonl or csv (default: by "
                                      "file extension)"),
    batch_size: int = BatchSizeOption,
    workers: int | None = WorkersOption,
    keep_indexes: bool = typer.Option(False, "--keep-indexes",
                                      help="into an empty table too, maintain the search indexes "
                                           "row by row instead of rebuilding them at the end"),
    config: Path | None = ConfigOption,
) -> None:
    """Import identities (upsert by id), streaming; reports every rejected row."""
    from servicegate.identity.bulk import deferred_indexes
    from servicegate.identity.importer import (
        Importer,
        ImportFormatError,
        csv_records,
        detect_format,
        jsonl_records,
    )
    from servicegate.identity.parse_pool import default_workers
    from servicegate.identity.store import IdentityStore
    from servicegate.storage.bulk_load import driver_bulk_load

    settings = settings_from(config)
    _warn_if_external(settings)
    try:
        fmt = detect_format(file, format)
    except ImportFormatError as exc:
        raise _fail(str(exc)) from None
    if file == "-":
        stream = sys.stdin.buffer
        size = None
    else:
        path = Path(file)
        if not path.is_file():
            raise _fail(f"no such file: {file}")
        # large reads: each refill gives up the GIL, and taking it back waits on the writer
        stream = path.open("rb", buffering=READ_BUFFER)
        size = path.stat().st_size

    started = time.perf_counter()
    progress = Progress(
        TextColumn("importing", style="bold"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[rows]} imported, "
                                          "{task.fields[rejected]} rejected"),
        console=err_console,
    )
    task = progress.add_task("import", total=size, rows=0, rejected=0)

    def rejected(r):  # type: ignore[no-untyped-def]
        progress.console.print(Text.assemble((f"line {r.line}: ", "yellow"), r.reason),
                               soft_wrap=True)

    def advanced(summary):  # type: ignore[no-untyped-def]
        done = stream.tell() if size is not None else None
        progress.update(task, completed=done, rows=summary.imported, rejected=summary.rejected)

    async def go():  # type: ignore[no-untyped-def]
        from servicegate.cli.database import migrated_engine

        async with migrated_engine(settings) as engine:
            store = IdentityStore(engine, driver_bulk_load(engine))
            records = csv_records(stream) if fmt == "csv" else jsonl_records(stream)
            async with deferred_indexes(engine, enabled=not keep_indexes,
                                         parallel=INDEX_BUILDS) as initial:
                importer = Importer(store, batch_size, rejected, advanced, new=initial,
                                    workers=default_workers() if workers is None else workers)
                summary = await importer.run(records)
            if summary.imported:
                await store.analyze()
            return summary

    try:
        with progress:
            summary = run(go)
            progress.update(task, completed=size)
    except ImportFormatError as exc:
        raise _fail(str(exc)) from None
    except BrokenProcessPool:
        raise _fail("a parsing worker process died; the batches written before it stay "
                    "imported (run the import again, or use --workers 0)") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    elapsed = time.perf_counter() - started
    rate = summary.imported / elapsed if elapsed > 0 else 0.0
    console.print(f"imported {summary.imported} identities in {elapsed:.1f}s ({rate:,.0f}/s); "
                  f"rejected {summary.rejected}"
                  + (" (each listed above as it was read)" if summary.rejected else ""))
    if summary.rejected:
        raise typer.Exit(1)


@app.command()
def generate(
    count: int = typer.Argument(..., min=1, max=100_000_000, help="how many identities"),
    seed: int = typer.Option(1, "--seed", "-s", help="same seed, same identities"),
    start: int = typer.Option(0, "--start", min=0, help="index of the first identity"),
    out: str | None = typer.Option(None, "--out", "-o",
                                   help="write JSON Lines to this file (- for stdout) instead "
                                        "of the database"),
    batch_size: int = BatchSizeOption,
    workers: int | None = WorkersOption,
    config: Path | None = ConfigOption,
) -> None:
    """Generate deterministic synthetic Nordic identities (into the database or a file)."""
    from servicegate.identity.generator import identities

    started = time.perf_counter()
    if out is not None:
        target = sys.stdout.buffer if out == "-" else Path(out).open("wb")
        try:
            with Progress(TextColumn("generating", style="bold"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                          disable=out == "-") as progress:
                task = progress.add_task("generate", total=count)
                for n, item in enumerate(identities(count, seed, start), start=1):
                    target.write(orjson.dumps(item) + b"\n")
                    if n % 5000 == 0:
                        progress.update(task, completed=n)
                progress.update(task, completed=count)
        finally:
            if target is not sys.stdout.buffer:
                target.close()
        if out != "-":
            console.print(f"wrote {count} identities to {out} in "
                          f"{time.perf_counter() - started:.1f}s")
        return

    from servicegate.identity.bulk import deferred_indexes
    from servicegate.identity.importer import Importer
    from servicegate.identity.parse_pool import default_workers
    from servicegate.identity.store import IdentityStore
    from servicegate.storage.bulk_load import driver_bulk_load

    settings = settings_from(config)
    _warn_if_external(settings)
    with Progress(TextColumn("generating", style="bold"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console) as progress:
        task = progress.add_task("generate", total=count)

        async def go():  # type: ignore[no-untyped-def]
            from servicegate.cli.database import migrated_engine

            async with migrated_engine(settings) as engine:
                store = IdentityStore(engine, driver_bulk_load(engine))
                records = ((i, item, None) for i, item in
                           enumerate(identities(count, seed, start), start=1))
                async with deferred_indexes(engine, parallel=INDEX_BUILDS) as initial:
                    importer = Importer(
                        store, batch_size, new=initial,
                        on_batch=lambda s: progress.update(task, completed=s.imported),
                        workers=default_workers() if workers is None else workers)
                    summary = await importer.run(records)
                await store.analyze()
                return summary

        summary = run(go)
    elapsed = time.perf_counter() - started
    console.print(f"generated {summary.imported} identities into the database in {elapsed:.1f}s "
                  f"({summary.imported / elapsed:,.0f}/s)")
