"""Read definition files: YAML documents -> compiled definitions, errors naming file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from servicegate.actions import registry
from servicegate.actions.base import BuildContext
from servicegate.config import Settings
from servicegate.definitions.compiled import CompiledDefinition, compile_definition
from servicegate.definitions.models import ActionUnion, Definition
from servicegate.expressions import ExpressionError
from servicegate.validation import describe, key_path

MAX_FILE_BYTES = 1_048_576
SUFFIXES = (".yaml", ".yml")
_WHERE = re.compile(r"^(?P<where>[A-Za-z_][\w-]*(?:\.[\w$-]+|\[\d+\])*): ")
_WHERE_PART = re.compile(r"\.?([\w$-]+)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class LoadProblem:
    file: Path
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line or 1}: {self.reason}"


class FileBroken(Exception):
    def __init__(self, problems: list[LoadProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def definition_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def load_file(path: Path, settings: Settings) -> list[CompiledDefinition]:
    """Every definition in the file (one per YAML document), or FileBroken listing each error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileBroken([LoadProblem(path, None, f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise FileBroken([LoadProblem(path, None, f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        documents = _documents(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise FileBroken([LoadProblem(path, None, "not UTF-8 text")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise FileBroken([LoadProblem(path, line, f"YAML syntax: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise FileBroken([LoadProblem(path, None, f"YAML: {exc}")]) from None
    problems: list[LoadProblem] = []
    compiled: list[CompiledDefinition] = []
    for node, data in documents:
        line = node.start_mark.line + 1
        if not isinstance(data, dict):
            problems.append(LoadProblem(path, line, "a definition must be a mapping"))
            continue
        try:
            spec = Definition.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                problems.append(LoadProblem(path, _line_of(node, loc),
                                            f"{key_path(Definition, loc)}: "
                                            f"{describe(err, Definition)}"))
            # the action may be valid on its own: its templates and parameters are checked
            # too, so that one run reports every problem of the file
            problems.extend(_action_problems(data, path, node, settings))
            continue
        try:
            compiled.append(compile_definition(spec, settings, path, line))
        except (ValueError, ExpressionError, TypeError) as exc:
            problems.append(_compile_problem(exc, path, node))
    if problems:
        raise FileBroken(sorted(problems, key=lambda p: p.line or 0))
    if not compiled:
        raise FileBroken([LoadProblem(path, None, "no definition in the file")])
    return compiled


def _action_problems(data: dict[str, Any], path: Path, node: yaml.Node,
                     settings: Settings) -> list[LoadProblem]:
    """What compiling the action of a definition that failed validation elsewhere finds."""
    try:
        spec = TypeAdapter(ActionUnion).validate_python(data.get("action"))
    except ValidationError:
        return []  # reported with the definition's own errors
    ctx = BuildContext(settings=settings, definition=str(data.get("name", "?")),
                       directory=path.parent)
    try:
        registry.build(spec, ctx, "action")
    except (ValueError, ExpressionError, TypeError) as exc:
        return [_compile_problem(exc, path, node)]
    return []


def _compile_problem(exc: Exception, path: Path, node: yaml.Node) -> LoadProblem:
    message = str(exc)
    match = _WHERE.match(message)
    at = _line_of(node, _loc_of(match.group("where"))) if match else node.start_mark.line + 1
    return LoadProblem(path, at, message)


def _documents(text: str) -> list[tuple[yaml.Node, Any]]:
    loader = yaml.SafeLoader(text)
    out = []
    try:
        while loader.check_node():
            node = loader.get_node()
            out.append((node, loader.construct_document(node)))
    finally:
        loader.dispose()
    return out


def _loc_of(where: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for name, index in _WHERE_PART.findall(where):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The line of the deepest key or item the error location reaches."""
    current = node
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    current = value
                    line = key.start_mark.line + 1
                    break
            else:
                continue  # e.g. the discriminator tag pydantic adds to union locations
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(current.value):
                current = current.value[part]
                line = current.start_mark.line + 1
            else:
                break
        else:
            break
    return line
