"""Syntax tree -> filter text that parses back to the same tree (used in tests and logs)."""

from __future__ import annotations

import datetime as dt

from servicegate.identity.odata import ast


def literal_text(node: ast.Literal) -> str:
    if node.kind == "string":
        return "'" + str(node.value).replace("'", "''") + "'"
    if node.kind == "null":
        return "null"
    if node.kind == "bool":
        return "true" if node.value else "false"
    if node.kind == "date":
        assert isinstance(node.value, dt.date)
        return node.value.isoformat()
    if node.kind == "float":
        return repr(float(node.value))  # type: ignore[arg-type]
    return str(node.value)


def to_text(node: ast.Node) -> str:
    if isinstance(node, ast.Literal):
        return literal_text(node)
    if isinstance(node, ast.Path):
        return node.text
    if isinstance(node, ast.Call):
        return f"{node.name}({', '.join(to_text(a) for a in node.args)})"
    if isinstance(node, ast.Compare):
        return f"{_operand(node.left)} {node.op} {_operand(node.right)}"
    if isinstance(node, ast.In):
        return f"{_operand(node.operand)} in ({', '.join(literal_text(v) for v in node.values)})"
    if isinstance(node, ast.BoolOp):
        return f"({to_text(node.left)}) {node.op} ({to_text(node.right)})"
    if isinstance(node, ast.Not):
        return f"not ({to_text(node.operand)})"
    if isinstance(node, ast.Lambda):
        if node.body is None:
            return f"{node.collection.text}/{node.kind}()"
        return f"{node.collection.text}/{node.kind}({node.variable}: {to_text(node.body)})"
    raise TypeError(node)


def _operand(node: ast.Node) -> str:
    text = to_text(node)
    return text if isinstance(node, ast.Literal | ast.Path | ast.Call) else f"({text})"
