"""Tokens of the simplified OData filter language, each with its start position."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from servicegate.identity.odata.errors import QueryError

Kind = Literal["string", "int", "float", "date", "ident", "punct", "end"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\w.:-])")
# A date with a time after it (ISO 8601 `T`, or a space and hh:mm): the language has dates only
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt]\d| \d{1,2}:\d)")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?(?![\w.])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PUNCT = "()/,:"
_SPACE = " \t\r\n"
MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    pos: int
    value: object = None

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the filter"
        if self.kind == "string":
            return "a string"
        return f"{self.text!r}"


def tokenize(source: str) -> list[Token]:
    nul = source.find("\x00")
    if nul >= 0:
        raise QueryError("the filter contains a NUL character", nul)
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in _SPACE:
            i += 1
            continue
        if ch == "'":
            start, i, parts = i, i + 1, []
            while True:
                j = source.find("'", i)
                if j < 0:
                    raise QueryError("unterminated string (a quote inside is written '')", start)
                parts.append(source[i:j])
                if j + 1 < n and source[j + 1] == "'":
                    parts.append("'")
                    i = j + 2
                    continue
                i = j + 1
                break
            tokens.append(Token("string", source[start:i], start, "".join(parts)))
            continue
        if ch in _PUNCT:
            tokens.append(Token("punct", ch, i))
            i += 1
            continue
        if ch.isdigit() or (ch == "-" and i + 1 < n and source[i + 1].isdigit()):
            if _DATETIME.match(source, i):
                raise QueryError(f"date-time values are not supported; dates are written "
                                 f"YYYY-MM-DD without a time or time zone, e.g. "
                                 f"{source[i:i + 10]}", i)
            m = _DATE.match(source, i)
            if m:
                try:
                    value: object = dt.date.fromisoformat(m.group())
                except ValueError:
                    raise QueryError(f"invalid date {m.group()!r}", i) from None
                tokens.append(Token("date", m.group(), i, value))
                i = m.end()
                continue
            m = _NUMBER.match(source, i)
            if not m:
                raise QueryError(f"malformed number starting {source[i:i + 12]!r}", i)
            text = m.group()
            if m.group(1) or m.group(2):
                number_f = float(text)
                if number_f in (float("inf"), float("-inf")):
                    raise QueryError("number out of range", i)
                tokens.append(Token("float", text, i, number_f))
            else:
                number = int(text)
                if abs(number) > MAX_INT:
                    raise QueryError("number out of range", i)
                tokens.append(Token("int", text, i, number))
            i = m.end()
            continue
        m = _IDENT.match(source, i)
        if m:
            tokens.append(Token("ident", m.group(), i))
            i = m.end()
            continue
        raise QueryError(f"unexpected character {ch!r}", i)
    tokens.append(Token("end", "", n))
    return tokens
