"""The definitions being served: loaded from a directory, swapped atomically, hot-reloaded.

A broken file keeps the last good version of its definitions and is reported in the logs and
in metrics. Listeners added with `on_reload` run after every reload that changed something
(the lead wires the `refreshcache` event to it).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from servicegate.config import Settings
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.definitions.loader import FileBroken, LoadProblem, definition_files, load_file

log = structlog.get_logger("servicegate.definitions")

LOADED = Gauge("servicegate_definitions_loaded", "Service definitions being served")
BROKEN = Gauge("servicegate_definition_files_broken", "Definition files that failed to load")
RELOADS = Counter("servicegate_definition_reloads_total", "Definition reloads", ["result"])


@dataclass(slots=True)
class _FileState:
    digest: str
    definitions: list[CompiledDefinition]
    problems: list[LoadProblem] = field(default_factory=list)


@dataclass(slots=True)
class ReloadReport:
    loaded: list[str]
    added: list[str]
    removed: list[str]
    changed: list[str]
    problems: list[LoadProblem]

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.removed or self.changed)


Listener = Callable[[ReloadReport], Any]


class DefinitionRegistry:
    def __init__(self, settings: Settings, directory: Path | None = None) -> None:
        self.settings = settings
        self.directory = Path(directory or settings.definitions.dir)
        self._by_name: dict[str, CompiledDefinition] = {}
        self._files: dict[Path, _FileState] = {}
        self._modules: dict[Path, str] = {}
        self._listeners: list[Listener] = []
        self.problems: list[LoadProblem] = []
        self._lock = asyncio.Lock()

    # -- reading ---------------------------------------------------------------------------
    def get(self, name: str) -> CompiledDefinition | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def scopes(self) -> set[str]:
        """The scopes the loaded definitions use: `services:<name>`, and those they demand."""
        used: set[str] = set()
        for definition in self._by_name.values():
            used.update(definition.service_scopes)
        return used

    def fingerprint(self) -> str:
        """A digest of every loaded file's content: equal on every process that loaded the same."""
        parts = sorted(f"{path}:{state.digest}" for path, state in self._files.items())
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def on_reload(self, listener: Listener) -> None:
        """Call `listener(report)` (sync or async) after each reload that changed something."""
        self._listeners.append(listener)

    # -- loading ---------------------------------------------------------------------------
    def load(self) -> ReloadReport:
        """(Re)load the directory; unchanged files are not recompiled."""
        self._python_path()
        force = self._reload_changed_modules()
        seen: dict[Path, _FileState] = {}
        problems: list[LoadProblem] = []
        for path in definition_files(self.directory):
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue
            previous = self._files.get(path)
            if previous is not None and previous.digest == digest and not force:
                seen[path] = previous
                problems.extend(previous.problems)
                continue
            try:
                state = _FileState(digest, load_file(path, self.settings))
            except FileBroken as exc:
                kept = previous.definitions if previous else []
                state = _FileState(digest, kept, exc.problems)
                for problem in exc.problems:
                    log.error("definition_file_broken", file=str(problem.file), line=problem.line,
                              reason=problem.reason, kept_previous=bool(kept))
            seen[path] = state
            problems.extend(state.problems)
        by_name: dict[str, CompiledDefinition] = {}
        for path, state in seen.items():
            for definition in state.definitions:
                other = by_name.get(definition.name)
                if other is not None:
                    problem = LoadProblem(path, definition.line, f"name {definition.name!r} is "
                                          f"already defined in {other.source}")
                    problems.append(problem)
                    log.error("definition_duplicate", file=str(path), line=definition.line,
                              name=definition.name)
                    continue
                by_name[definition.name] = definition
        old = self._by_name
        self._files = seen
        self._by_name = by_name  # the atomic swap: requests see the old or the new dict
        self.problems = problems
        report = ReloadReport(
            loaded=sorted(by_name),
            added=sorted(set(by_name) - set(old)),
            removed=sorted(set(old) - set(by_name)),
            changed=sorted(n for n in set(by_name) & set(old) if by_name[n] is not old[n]),
            problems=problems,
        )
        LOADED.set(len(by_name))
        BROKEN.set(len({p.file for p in problems}))
        RELOADS.labels("broken" if problems else "ok").inc()
        if report.changed_anything:
            log.info("definitions_loaded", count=len(by_name), added=report.added,
                     removed=report.removed, changed=report.changed)
        return report

    async def reload(self) -> ReloadReport:
        async with self._lock:
            report = self.load()
        if report.changed_anything:
            for listener in list(self._listeners):
                try:
                    outcome = listener(report)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception as exc:
                    log.error("reload_listener_failed", exc_info=exc)
        return report

    async def watch(self, debounce_ms: int = 200) -> None:
        """Reload whenever a file in the directory changes (runs as a background worker)."""
        from watchfiles import awatch

        self.directory.mkdir(parents=True, exist_ok=True)
        async for _changes in awatch(self.directory, debounce=debounce_ms, recursive=True):
            try:
                await self.reload()
            except Exception as exc:  # never let the watcher die on a bad file
                log.error("definitions_reload_failed", exc_info=exc)

    # -- python handlers living next to the definitions --------------------------------------
    def _python_path(self) -> None:
        root = str(self.directory.resolve())
        if root not in sys.path:
            sys.path.append(root)  # last: a handler module never shadows an installed one

    def _reload_changed_modules(self) -> bool:
        """Re-import handler modules from the directory whose source changed; True if any."""
        if not self.directory.is_dir():
            return False
        root = self.directory.resolve()
        changed = False
        current: dict[Path, str] = {}
        for path in sorted(root.rglob("*.py")):
            try:
                current[path] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue
        for path, digest in current.items():
            if self._modules.get(path, digest) != digest:
                changed = True
                for module in list(sys.modules.values()):
                    file = getattr(module, "__file__", None)
                    if file and Path(file).resolve() == path:
                        try:
                            importlib.reload(module)
                        except Exception as exc:
                            log.error("handler_module_reload_failed", file=str(path),
                                      error=f"{type(exc).__name__}: {exc}")
        if set(self._modules) != set(current) and self._modules:
            changed = True
        importlib.invalidate_caches()
        self._modules = current
        return changed
