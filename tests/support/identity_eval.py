"""A plain-Python evaluation of filters and ordering over identity documents: the reference
the SQL translation is checked against (same null semantics, codepoint string order)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from servicegate.identity.odata import ast

SCALARS = {
    "id": ("id",), "juridicaltype": ("juridicalType",), "idnumber": ("idnumber",),
    "birthdate": ("birthDate",), "partyreferencecode": ("partyReferenceCode",),
}
NAME_KEYS = ("firstName", "middleName", "lastName", "companyName", "fullName", "salutation",
             "nameSuffix")
for key in NAME_KEYS:
    SCALARS[f"name/{key.lower()}"] = ("name", key)
    SCALARS[key.lower()] = ("name", key)
ADDRESS_KEYS = ("type", "coAddress", "street", "houseNo", "houseNoExtension", "zipCode", "city",
                "stateCode", "countryCode")
ADDRESS_ALIASES = {k.lower(): k for k in ADDRESS_KEYS if k != "type"}
SHADOWED = {("name", "firstName"), ("name", "lastName"), ("name", "companyName"),
            ("name", "fullName"), ("city",)}


class Evaluator:
    def __init__(self, backend: str) -> None:
        self.sqlite = backend == "sqlite"

    # values: (value, shadowed?) ----------------------------------------------------------
    def value(self, node: ast.Node, doc: dict, scope: dict[str, dict]) -> tuple[Any, bool]:
        if isinstance(node, ast.Call):
            inner, shadow = self.value(node.args[0], doc, scope)
            if inner is None:
                return None, False
            direct = isinstance(node.args[0], ast.Path)
            if node.name == "tolower":
                return (inner.lower() if (shadow and direct) or not self.sqlite
                        else _ascii_case(inner, str.lower)), False
            return (inner.upper() if not self.sqlite else _ascii_case(inner, str.upper)), False
        assert isinstance(node, ast.Path)
        head = node.segments[0].lower()
        if head in scope:
            key = ADDRESS_ALIASES.get(node.segments[1].lower(), node.segments[1])
            if node.segments[1].lower() == "type":
                key = "type"
            return scope[head].get(key), (key,) in SHADOWED
        path = SCALARS[node.text.lower()]
        value: Any = doc
        for part in path:
            value = value.get(part) if value is not None else None
        if path == ("birthDate",) and value is not None:
            value = dt.date.fromisoformat(value)
        return value, path in SHADOWED

    def address_member(self, node: ast.Node) -> str | None:
        """The address key when `node` (inside comparisons) is an implicit-any address property."""
        target = node.args[0] if isinstance(node, ast.Call) else node
        if isinstance(target, ast.Call):
            return self.address_member(target)
        if not isinstance(target, ast.Path):
            return None
        text = target.text.lower()
        if text.startswith("addresses/"):
            return text.split("/", 1)[1]
        return text if text in ADDRESS_ALIASES else None

    # conditions -------------------------------------------------------------------------
    def holds(self, node: ast.Node, doc: dict, scope: dict[str, dict] | None = None) -> bool:
        scope = scope or {}
        if isinstance(node, ast.BoolOp):
            if node.op == "and":
                return self.holds(node.left, doc, scope) and self.holds(node.right, doc, scope)
            return self.holds(node.left, doc, scope) or self.holds(node.right, doc, scope)
        if isinstance(node, ast.Not):
            return not self.holds(node.operand, doc, scope)
        if isinstance(node, ast.Literal):
            return bool(node.value)
        if isinstance(node, ast.Lambda):
            addresses = doc["addresses"]
            if node.body is None:
                return bool(addresses)
            var = node.variable.lower()
            results = (self.holds(node.body, doc, {var: a}) for a in addresses)
            return any(results) if node.kind == "any" else all(results)
        operand = node.operand if isinstance(node, ast.In) else (
            node.args[0] if isinstance(node, ast.Call) else _property_side(node))
        member = self.address_member(operand) if not scope else None
        if member is not None:  # implicit any over addresses
            return any(self.predicate(node, doc, {"\0": a}, member) for a in doc["addresses"])
        return self.predicate(node, doc, scope, None)

    def predicate(self, node: ast.Node, doc: dict, scope: dict[str, dict], member: str | None
                  ) -> bool:
        def val(n: ast.Node) -> Any:
            if member is not None:
                n = _rebase(n, member)
            return self.value(n, doc, scope)[0]

        if isinstance(node, ast.In):
            v = val(node.operand)
            return v is not None and v in [_lit(x) for x in node.values]
        if isinstance(node, ast.Call):
            v = val(node.args[0])
            pattern = node.args[1].value
            if v is None:
                return False
            if node.name == "contains":
                return pattern in v
            return v.startswith(pattern) if node.name == "startswith" else v.endswith(pattern)
        assert isinstance(node, ast.Compare)
        left, right, op = node.left, node.right, node.op
        if isinstance(left, ast.Literal):
            left, right = right, left
            op = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}.get(op, op)
        v, lit = val(left), _lit(right)
        if lit is None:
            return (v is None) == (op == "eq")
        if v is None:
            return op == "ne"
        return {"eq": v == lit, "ne": v != lit, "gt": v > lit, "ge": v >= lit, "lt": v < lit,
                "le": v <= lit}[op]

    # ordering ---------------------------------------------------------------------------
    def sort(self, docs: list[dict], keys: list[tuple[str, bool]]) -> list[dict]:
        out = sorted(docs, key=lambda d: d["id"])
        for name, desc in reversed(keys):
            path = SCALARS[name.lower()]

            def get(d: dict, path: tuple[str, ...] = path) -> Any:
                value: Any = d
                for part in path:
                    value = value.get(part) if value is not None else None
                return value

            present = [d for d in out if get(d) is not None]
            missing = [d for d in out if get(d) is None]
            present.sort(key=get, reverse=desc)
            out = (missing + present) if desc else (present + missing)
        return out


def _ascii_case(text: str, fn: Any) -> str:
    return "".join(fn(c) if c.isascii() else c for c in text)


def _lit(node: ast.Literal) -> Any:
    return node.value


def _property_side(node: ast.Compare) -> ast.Node:
    return node.right if isinstance(node.left, ast.Literal) else node.left


def _rebase(node: ast.Node, member: str) -> ast.Node:
    """Rewrite an implicit-any address property as a member of the lambda variable \\0."""
    if isinstance(node, ast.Call):
        return ast.Call(node.name, (_rebase(node.args[0], member), *node.args[1:]))
    if isinstance(node, ast.Path):
        return ast.Path(("\0", member))
    return node
