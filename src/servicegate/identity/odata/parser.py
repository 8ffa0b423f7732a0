"""Recursive-descent parser: `$filter` text -> syntax tree, with limits on size and shape.

Precedence, loosest first: `or`, `and`, `not`, comparisons (`eq ne gt ge lt le in`),
then operands (literals, property paths, function calls, `any`/`all`, parentheses).
`not` applies to the whole comparison after it (`not city eq 'Lund'`).
"""

from __future__ import annotations

from dataclasses import dataclass

from servicegate.identity.odata import ast
from servicegate.identity.odata.errors import QueryError
from servicegate.identity.odata.lexer import Token, tokenize

# name -> number of arguments
FUNCTIONS = {"contains": 2, "startswith": 2, "endswith": 2, "tolower": 1, "toupper": 1}
PREDICATE_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})
_KEYWORDS = frozenset({"and", "or", "not", "in", *ast.COMPARE_OPS})


@dataclass(frozen=True)
class Limits:
    max_length: int = 2048
    max_depth: int = 24
    max_terms: int = 64
    max_in_values: int = 100


DEFAULT_LIMITS = Limits()


class _Parser:
    def __init__(self, source: str, limits: Limits) -> None:
        self.tokens = tokenize(source)
        self.i = 0
        self.depth = 0
        self.terms = 0
        self.limits = limits

    # -- token helpers -------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at_punct(self, ch: str) -> bool:
        tok = self.peek()
        return tok.kind == "punct" and tok.text == ch

    def at_keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "ident" and tok.text.lower() == word

    def expect_punct(self, ch: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind == "punct" and tok.text == ch:
            return self.advance()
        raise QueryError(f"expected '{ch}' {what} but found {tok.describe()}", tok.pos)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise QueryError(f"filter nested too deeply (at most {self.limits.max_depth} levels)", pos)

    def count_term(self, pos: int) -> None:
        self.terms += 1
        if self.terms > self.limits.max_terms:
            raise QueryError(f"too many conditions (at most {self.limits.max_terms})", pos)

    # -- grammar ---------------------------------------------------------------------
    def parse(self) -> ast.Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == "punct" and tok.text == ")":
                raise QueryError("unbalanced ')' without a matching '('", tok.pos)
            raise QueryError(f"expected 'and', 'or' or the end but found {tok.describe()}", tok.pos)
        return node

    def parse_or(self) -> ast.Node:
        left = self.parse_and()
        while self.at_keyword("or"):
            op = self.advance()
            left = ast.BoolOp("or", left, self.parse_and(), pos=op.pos)
        return left

    def parse_and(self) -> ast.Node:
        left = self.parse_unary()
        while self.at_keyword("and"):
            op = self.advance()
            left = ast.BoolOp("and", left, self.parse_unary(), pos=op.pos)
        return left

    def parse_unary(self) -> ast.Node:
        if self.at_keyword("not"):
            tok = self.advance()
            self.enter(tok.pos)
            operand = self.parse_unary()
            self.depth -= 1
            return ast.Not(operand, pos=tok.pos)
        return self.parse_comparison()

    def parse_comparison(self) -> ast.Node:
        start = self.peek().pos
        left = self.parse_operand()
        tok = self.peek()
        word = tok.text.lower() if tok.kind == "ident" else ""
        if word in ast.COMPARE_OPS:
            self.advance()
            self.count_term(tok.pos)
            right = self.parse_operand()
            return ast.Compare(word, left, right, pos=tok.pos)  # type: ignore[arg-type]
        if word == "in":
            self.advance()
            self.count_term(tok.pos)
            return ast.In(left, self.parse_list(), pos=tok.pos)
        self.count_term(start)
        return left

    def parse_list(self) -> tuple[ast.Literal, ...]:
        self.expect_punct("(", "after 'in'")
        values: list[ast.Literal] = []
        while True:
            tok = self.peek()
            node = self.parse_operand()
            if not isinstance(node, ast.Literal):
                raise QueryError("'in' takes a list of values", tok.pos)
            values.append(node)
            if len(values) > self.limits.max_in_values:
                raise QueryError(f"too many values in 'in' (at most {self.limits.max_in_values})",
                                 tok.pos)
            if self.at_punct(","):
                self.advance()
                continue
            self.expect_punct(")", "to close the 'in' list")
            return tuple(values)

    def parse_operand(self) -> ast.Node:
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.advance()
            self.enter(tok.pos)
            node = self.parse_or()
            if not self.at_punct(")"):
                end = self.peek()
                raise QueryError(
                    f"missing ')' to close the '(' at position {tok.pos}; found {end.describe()}",
                    end.pos,
                )
            self.advance()
            self.depth -= 1
            return node
        if tok.kind in ("string", "int", "float", "date"):
            self.advance()
            return ast.Literal(tok.kind, tok.value, pos=tok.pos)  # type: ignore[arg-type]
        if tok.kind == "ident":
            word = tok.text.lower()
            if word in ("true", "false"):
                self.advance()
                return ast.Literal("bool", word == "true", pos=tok.pos)
            if word == "null":
                self.advance()
                return ast.Literal("null", None, pos=tok.pos)
            if word in _KEYWORDS:
                raise QueryError(
                    f"expected a property, value or function before {tok.text!r}", tok.pos
                )
            self.advance()
            if self.at_punct("("):
                return self.parse_call(tok)
            return self.parse_path(tok)
        if tok.kind == "end":
            raise QueryError("unexpected end of the filter; a property, value or '(' is missing",
                             tok.pos)
        raise QueryError(f"expected a property, value, function or '(' but found {tok.describe()}",
                         tok.pos)

    def parse_call(self, name_tok: Token) -> ast.Call:
        name = name_tok.text.lower()
        if name not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise QueryError(f"unknown function {name_tok.text!r} (known: {known})", name_tok.pos)
        self.enter(name_tok.pos)
        self.advance()  # (
        args: list[ast.Node] = []
        if not self.at_punct(")"):
            while True:
                args.append(self.parse_or())
                if self.at_punct(","):
                    self.advance()
                    continue
                break
        self.expect_punct(")", f"to close {name}(")
        self.depth -= 1
        if len(args) != FUNCTIONS[name]:
            raise QueryError(
                f"{name}() takes {FUNCTIONS[name]} argument{'s' if FUNCTIONS[name] > 1 else ''}, "
                f"not {len(args)}",
                name_tok.pos,
            )
        return ast.Call(name, tuple(args), pos=name_tok.pos)

    def parse_path(self, first: Token) -> ast.Node:
        segments = [first.text]
        while self.at_punct("/"):
            self.advance()
            tok = self.peek()
            if tok.kind != "ident" or tok.text.lower() in _KEYWORDS:
                raise QueryError(f"expected a property name after '/' but found {tok.describe()}",
                                 tok.pos)
            self.advance()
            word = tok.text.lower()
            if word in ("any", "all") and self.at_punct("("):
                return self.parse_lambda(word, ast.Path(tuple(segments), pos=first.pos), tok)
            segments.append(tok.text)
        return ast.Path(tuple(segments), pos=first.pos)

    def parse_lambda(self, kind: str, collection: ast.Path, tok: Token) -> ast.Lambda:
        self.enter(tok.pos)
        self.advance()  # (
        if self.at_punct(")"):
            self.advance()
            self.depth -= 1
            if kind == "all":
                raise QueryError("all() needs a condition: all(a: a/city eq 'Lund')", tok.pos)
            return ast.Lambda("any", collection, None, None, pos=collection.pos)
        var = self.peek()
        if var.kind != "ident" or var.text.lower() in _KEYWORDS:
            raise QueryError(f"expected a variable name in {kind}(v: ...) but found {var.describe()}",
                             var.pos)
        self.advance()
        self.expect_punct(":", f"after the variable of {kind}(")
        body = self.parse_or()
        self.expect_punct(")", f"to close {kind}(")
        self.depth -= 1
        return ast.Lambda(kind, collection, var.text, body, pos=collection.pos)  # type: ignore[arg-type]


def parse(source: str, limits: Limits = DEFAULT_LIMITS) -> ast.Node | None:
    """Parse a `$filter`; None for an empty one. Raises QueryError with the position."""
    if len(source) > limits.max_length:
        raise QueryError(f"filter longer than {limits.max_length} characters", limits.max_length)
    if not source.strip():
        return None
    return _Parser(source, limits).parse()
