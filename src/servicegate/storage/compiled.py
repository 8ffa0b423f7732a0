"""SQLAlchemy statements as driver SQL plus positional parameters, compiled once per shape.

Searches build a new statement per request (the filter decides its shape) and run it on the
raw driver connection (`storage/reads.py`). A statement's cache key names its shape without
its literal values, which come back as the key's extracted bind parameters: the SQL string
and the parameter order are kept per shape (least recently used dropped past `size`), and
each call only fills the values in, as SQLAlchemy's own compiled cache does inside
`Connection.execute`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Shape:
    sql: str
    compiled: Compiled
    names: tuple[str, ...]
    processors: tuple[Processor, ...]


class CompiledStatements:
    def __init__(self, dialect: Dialect, size: int = 512) -> None:
        self.dialect = dialect
        self.size = size
        self.shapes: OrderedDict[Any, _Shape] = OrderedDict()

    def __call__(self, stmt: ClauseElement) -> tuple[str, tuple[Any, ...]]:
        key = stmt._generate_cache_key()
        if key is None:  # a construct SQLAlchemy cannot cache: compiled each time
            return self._fill(self._compile(stmt, postcompile=True), None)
        shape = self.shapes.get(key.key)
        if shape is None:
            shape = self._compile(stmt, postcompile=False, key=key)
            if any(bind.expanding for bind in shape.compiled.binds.values()):
                # IN (...) of a list: its length is a value, not part of the shape
                return self._fill(self._compile(stmt, postcompile=True), None)
            self.shapes[key.key] = shape
            if len(self.shapes) > self.size:
                self.shapes.popitem(last=False)
        else:
            self.shapes.move_to_end(key.key)
        return self._fill(shape, key.bindparams)

    def _compile(self, stmt: ClauseElement, *, postcompile: bool, key: Any = None) -> _Shape:
        # the key lets `construct_params` take another statement's extracted values
        compiled = stmt.compile(dialect=self.dialect, cache_key=key,
                                compile_kwargs={"render_postcompile": postcompile})
        names = tuple(compiled.positiontup or ())
        processors = []
        for name in names:
            # an IN list rendered in place is named `<bind>_<n>` (render_postcompile)
            bind = compiled.binds.get(name)
            if bind is None:
                bind = compiled.binds.get(name.rsplit("_", 1)[0])
            if bind is None:
                raise ValueError(f"statement parameter {name!r} has no bind parameter")
            processors.append(bind.type.dialect_impl(self.dialect).bind_processor(self.dialect))
        return _Shape(str(compiled), compiled, names, tuple(processors))

    @staticmethod
    def _fill(shape: _Shape, extracted: Any) -> tuple[str, tuple[Any, ...]]:
        values = shape.compiled.construct_params(extracted_parameters=extracted)
        return shape.sql, tuple(
            values[name] if proc is None else proc(values[name])
            for name, proc in zip(shape.names, shape.processors, strict=True))
