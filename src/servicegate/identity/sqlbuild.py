"""Filter syntax tree -> SQLAlchemy boolean expression over a PropertyMap (bound parameters only).

Semantics are OData's two-valued ones: a comparison, `in` or string function on a null value is
false (`ne` is true), so `not` never turns "unknown" into a match. Collections become EXISTS
subqueries: `any(v: c)` -> EXISTS(... AND c), `all(v: c)` -> NOT EXISTS(... AND NOT c).

String matching is case-sensitive (as in OData); `tolower(...)` makes it case-insensitive and
uses a stored lower-case column when the property has one. Per backend:
- startswith -> a code-point range `>= p AND < p'` on both (B-tree indexes serve it; the
  gateway's text columns are COLLATE "C" on PostgreSQL and BINARY on SQLite, so this is exact
  and case-sensitive, unlike SQLite's LIKE);
- PostgreSQL: contains/endswith -> LIKE with escaped wildcards (pg_trgm indexes serve them);
- SQLite: contains -> instr(), endswith -> GLOB with escaped wildcards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from servicegate.identity.odata import ast
from servicegate.identity.odata.errors import QueryError
from servicegate.identity.odata.parser import PREDICATE_FUNCTIONS
from servicegate.identity.properties import Collection, Property, PropertyMap

_FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_TYPE_WORDS = {"string": "text", "int": "a whole number", "date": "a date (YYYY-MM-DD)"}


@dataclass(frozen=True)
class Operand:
    """A property, possibly wrapped in tolower()/toupper(), ready to compare."""

    expr: ColumnElement
    type: str
    base: Property  # its nullability decides the null handling
    pos: int


class FilterCompiler:
    def __init__(self, properties: PropertyMap, dialect: str) -> None:
        self.pm = properties
        self.sqlite = dialect == "sqlite"
        self.postgres = dialect == "postgresql"

    def compile(self, node: ast.Node | None) -> ColumnElement[bool]:
        if node is None:
            return true()
        return self.condition(node, {})

    # -- conditions ----------------------------------------------------------------------
    def condition(self, node: ast.Node, scope: dict[str, Collection]) -> ColumnElement[bool]:
        if isinstance(node, ast.BoolOp):
            parts = (self.condition(node.left, scope), self.condition(node.right, scope))
            return and_(*parts) if node.op == "and" else or_(*parts)
        if isinstance(node, ast.Not):
            return not_(self.condition(node.operand, scope))
        if isinstance(node, ast.Compare):
            return self.compare(node, scope)
        if isinstance(node, ast.In):
            return self.in_list(node, scope)
        if isinstance(node, ast.Call):
            if node.name not in PREDICATE_FUNCTIONS:
                raise QueryError(f"{node.name}() gives text, not a condition; compare it, e.g. "
                                 f"{node.name}(fullname) eq '...'", node.pos)
            return self.string_function(node, scope)
        if isinstance(node, ast.Lambda):
            return self.lambda_(node, scope)
        if isinstance(node, ast.Literal):
            if node.kind == "bool":
                return true() if node.value else false()
            raise QueryError("a value alone is not a condition", node.pos)
        if isinstance(node, ast.Path):
            raise QueryError(f"{node.text!r} alone is not a condition; compare it, "
                             f"e.g. {node.text} eq '...'", node.pos)
        raise QueryError("unsupported expression", getattr(node, "pos", None))

    def compare(self, node: ast.Compare, scope: dict[str, Collection]) -> ColumnElement[bool]:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, ast.Literal) and not isinstance(right, ast.Literal):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, ast.Literal):
            raise QueryError("compare a property with a value (two values given)", node.pos)
        if not isinstance(right, ast.Literal):
            raise QueryError("compare a property with a value; two properties cannot be compared",
                             getattr(right, "pos", node.pos))
        operand, collection = self.operand(left, scope)
        if right.kind == "null":
            if op not in ("eq", "ne"):
                raise QueryError("null can only be compared with eq or ne", right.pos)
            pred = operand.expr.is_(None) if op == "eq" else operand.expr.is_not(None)
            return self.implicit_any(pred, collection)
        value = self.coerce(right, operand)
        expr = operand.expr
        pred = {
            "eq": lambda: expr == value,
            "ne": lambda: expr != value,
            "gt": lambda: expr > value,
            "ge": lambda: expr >= value,
            "lt": lambda: expr < value,
            "le": lambda: expr <= value,
        }[op]()
        return self.implicit_any(self.two_valued(pred, operand, negative=op == "ne"), collection)

    def in_list(self, node: ast.In, scope: dict[str, Collection]) -> ColumnElement[bool]:
        if isinstance(node.operand, ast.Literal):
            raise QueryError("the left side of 'in' must be a property", node.operand.pos)
        operand, collection = self.operand(node.operand, scope)
        values = []
        for lit in node.values:
            if lit.kind == "null":
                raise QueryError("null is not allowed in an 'in' list; use eq null", lit.pos)
            values.append(self.coerce(lit, operand))
        # one parameter per value, so the list's length is part of the statement's shape
        pred = operand.expr.in_([literal(v, operand.expr.type) for v in values])
        return self.implicit_any(self.two_valued(pred, operand), collection)

    def string_function(self, node: ast.Call, scope: dict[str, Collection]) -> ColumnElement[bool]:
        target, pattern = node.args
        if isinstance(target, ast.Literal):
            raise QueryError(f"the first argument of {node.name}() must be a property",
                             target.pos)
        operand, collection = self.operand(target, scope)
        if operand.type != "string":
            raise QueryError(f"{node.name}() needs text; {operand.base.path} is "
                             f"{_TYPE_WORDS[operand.type]}", operand.pos)
        if not isinstance(pattern, ast.Literal) or pattern.kind != "string":
            raise QueryError(f"the second argument of {node.name}() must be a quoted string",
                             getattr(pattern, "pos", node.pos))
        text = str(pattern.value)
        expr = operand.expr
        if node.name == "startswith":
            pred = self.starts_with(operand, text)
        elif node.name == "contains":
            pred = (func.instr(expr, text) > 0 if self.sqlite
                    else expr.like("%" + _like_escape(text) + "%", escape="\\"))
        else:  # endswith
            pred = (expr.op("GLOB", is_comparison=True)("*" + _glob_escape(text)) if self.sqlite
                    else expr.like("%" + _like_escape(text), escape="\\"))
        return self.implicit_any(self.two_valued(pred, operand), collection)

    def starts_with(self, operand: Operand, prefix: str) -> ColumnElement[bool]:
        """A code-point range: exact, index-friendly, and (unlike LIKE with a parameter) usable
        by PostgreSQL's generic plans. Our columns compare by code point (SQLite BINARY,
        PostgreSQL COLLATE "C"); tables of unknown collation get LIKE/GLOB instead."""
        if self.pm.prefix == "pattern":
            if self.sqlite:
                return operand.expr.op("GLOB", is_comparison=True)(_glob_escape(prefix) + "*")
            return operand.expr.like(_like_escape(prefix) + "%", escape="\\")
        expr = operand.expr
        upper = _successor(prefix)
        lower_bound = expr >= prefix
        return lower_bound if upper is None else and_(lower_bound, expr < upper)

    def lambda_(self, node: ast.Lambda, scope: dict[str, Collection]) -> ColumnElement[bool]:
        coll = self.pm.collections.get(node.collection.text.lower())
        if coll is None:
            raise QueryError(f"{node.collection.text!r} is not a collection; any()/all() work on "
                             f"{', '.join(sorted(self.pm.collections)) or 'no collection here'}",
                             node.collection.pos)
        if scope:
            raise QueryError("any()/all() cannot be nested", node.pos)
        if node.body is None:
            return self.member_of(coll, None)
        assert node.variable is not None
        body = self.condition(node.body, {node.variable.lower(): coll})
        if node.kind == "any":
            return self.member_of(coll, body)
        return not_(self.member_of(coll, not_(body)))

    def member_of(self, coll: Collection, condition: ColumnElement[bool] | None
                  ) -> ColumnElement[bool]:
        """Some member of the collection satisfies `condition` (any member when None).

        PostgreSQL plans EXISTS as a semi-join; SQLite runs a correlated EXISTS once per
        identity, but `id IN (SELECT ...)` lets it start from the member's index."""
        conditions = [] if condition is None else [condition]
        if self.sqlite:
            members = select(coll.parent_key).where(coll.parent_key.is_not(None), *conditions)
            return coll.owner_key.in_(members)
        link = coll.parent_key == coll.owner_key
        return exists(select(literal(1)).select_from(coll.table).where(link, *conditions))

    # -- operands and values ---------------------------------------------------------------
    def operand(self, node: ast.Node, scope: dict[str, Collection]) -> tuple[Operand, Collection | None]:
        if isinstance(node, ast.Path):
            prop, collection = self.resolve(node, scope)
            return Operand(prop.column, prop.type, prop, node.pos), collection
        if isinstance(node, ast.Call) and node.name in ("tolower", "toupper"):
            inner, collection = self.operand(node.args[0], scope)
            if inner.type != "string":
                raise QueryError(f"{node.name}() needs text; {inner.base.path} is "
                                 f"{_TYPE_WORDS[inner.type]}", inner.pos)
            if node.name == "tolower":
                direct = inner.expr is inner.base.column and inner.base.lower is not None
                expr = inner.base.lower if direct else self._case(func.lower, inner.expr)
            else:
                expr = self._case(func.upper, inner.expr)
            assert expr is not None
            return Operand(expr, "string", inner.base, node.pos), collection
        if isinstance(node, ast.Call):
            raise QueryError(f"{node.name}() is a condition, not a value", node.pos)
        if isinstance(node, ast.Literal):
            raise QueryError("expected a property here, found a value", node.pos)
        raise QueryError("expected a property here", getattr(node, "pos", None))

    def _case(self, fold: Any, expr: ColumnElement[str]) -> ColumnElement[str]:
        """lower()/upper() of a text value. PostgreSQL maps case by the collation of its
        argument, and the gateway's columns are COLLATE "C", which maps ASCII only
        (upper('Björkia') was 'BJöRKIA'): the case is mapped in the database's own locale,
        then the result compares by code point again, as every other string does. (SQLite's
        functions map ASCII only, whatever the collation: README, "Identity search".)"""
        if self.postgres:
            return fold(expr.collate("default")).collate("C")  # type: ignore[no-any-return]
        return fold(expr)  # type: ignore[no-any-return]

    def resolve(self, path: ast.Path, scope: dict[str, Collection]) -> tuple[Property, Collection | None]:
        """(property, collection needing an implicit any) for a path."""
        head = path.segments[0].lower()
        if head in scope:
            coll = scope[head]
            rest = "/".join(path.segments[1:]).lower()
            if not rest:
                raise QueryError(f"use a property of {path.segments[0]!r}, e.g. "
                                 f"{path.segments[0]}/city", path.pos)
            prop = coll.members.get(rest)
            if prop is None:
                members = ", ".join(sorted(p.path.split("/")[-1] for p in coll.members.values()))
                raise QueryError(f"unknown property {rest!r} of {coll.path} (known: {members})",
                                 path.pos)
            return prop, None
        name = path.text.lower()
        prop = self.pm.properties.get(name)
        if prop is None:
            if name in self.pm.collections:
                raise QueryError(f"{path.text!r} is a collection; use {path.text}/any(a: a/... eq "
                                 f"...)", path.pos)
            raise QueryError(f"unknown property {path.text!r}{self.pm.suggest(path.text)}",
                             path.pos)
        if prop.collection is not None:
            coll = self.pm.collections[prop.collection]
            in_scope = any(c is coll for c in scope.values())
            return prop, None if in_scope else coll
        return prop, None

    def coerce(self, lit: ast.Literal, operand: Operand) -> object:
        want = operand.type
        path = operand.base.path
        if want == "string":
            if lit.kind != "string":
                raise QueryError(f"{path} is text; put the value in quotes", lit.pos)
            return lit.value
        if want == "int":
            if lit.kind != "int":
                raise QueryError(f"{path} is a whole number; {_show(lit)} is not", lit.pos)
            if abs(int(lit.value)) > operand.base.max_int:  # type: ignore[arg-type]
                raise QueryError(f"{_show(lit)} is out of range for {path}", lit.pos)
            return lit.value
        if want == "date":
            if lit.kind == "date":
                return lit.value
            if lit.kind == "string":
                try:
                    return dt.date.fromisoformat(str(lit.value))
                except ValueError:
                    pass
            raise QueryError(f"{path} is a date (YYYY-MM-DD); {_show(lit)} is not", lit.pos)
        raise QueryError(f"cannot compare {path}", lit.pos)

    # -- null semantics and collections -----------------------------------------------------
    @staticmethod
    def two_valued(pred: ColumnElement[bool], operand: Operand, *, negative: bool = False
                   ) -> ColumnElement[bool]:
        if not operand.base.nullable:
            return pred
        column = operand.base.column
        return or_(pred, column.is_(None)) if negative else and_(pred, column.is_not(None))

    def implicit_any(self, pred: ColumnElement[bool], collection: Collection | None
                     ) -> ColumnElement[bool]:
        return pred if collection is None else self.member_of(collection, pred)


def _show(lit: ast.Literal) -> str:
    from servicegate.identity.odata.printer import literal_text

    return literal_text(lit)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:
                nxt = 0xE000
            return prefix[:-1] + chr(nxt)
        prefix = prefix[:-1]
    return None


def compile_filter(node: ast.Node | None, properties: PropertyMap, dialect: str) -> ColumnElement[bool]:
    return FilterCompiler(properties, dialect).compile(node)
