"""Compile definition values into render-ready trees; render them against an invocation's variables."""

from __future__ import annotations

import base64
import re
from contextvars import ContextVar
from typing import Any, NamedTuple
from urllib.parse import quote

import jmespath
import jmespath.exceptions
import orjson
from jinja2 import StrictUndefined, TemplateError, Undefined, UndefinedError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}$", re.DOTALL)
JMESPATH_KEY = "$jmespath"


class ExpressionError(ValueError):
    """A template or expression that does not compile (reported at load time)."""


class TemplateFailure(Exception):
    """A template or expression that failed while rendering (a 500 naming the definition)."""

    def __init__(self, where: str, cause: BaseException) -> None:
        super().__init__(f"{where}: {type(cause).__name__}: {cause}")
        self.where = where
        self.cause = cause


class MissingValue(UndefinedError):
    """A template used a value that is not there. `obj` is what it was looked up in (`name`
    its key, index or attribute), or jinja2's `missing` for an unknown variable `name`: the
    invocation tells from them whether the request lacks a value or the definition is wrong."""

    def __init__(self, message: str | None, obj: Any, name: Any) -> None:
        super().__init__(message)
        self.obj = obj
        self.name = name


class _Undefined(StrictUndefined):
    """StrictUndefined whose failure says where the value was looked up."""

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None,
                 exc: type[Exception] = UndefinedError) -> None:
        super().__init__(hint, obj, name, exc)  # type: ignore[arg-type]
        if exc is UndefinedError:  # the sandbox passes its SecurityError: kept as it is
            self._undefined_exception = self._missing  # type: ignore[assignment]

    def _missing(self, message: str | None) -> MissingValue:
        return MissingValue(message, self._undefined_obj, self._undefined_name)


def _tojson(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _b64encode(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


class Encoded(str):
    """Text already percent-encoded for a URL (`subpath`, `| urlquote`): a URL template keeps
    its `%XX` escapes instead of encoding the `%` again."""

    __slots__ = ()


def _urlquote(value: Any) -> str:
    return Encoded(quote(str(value), safe=""))


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=_Undefined, autoescape=False,
                                        keep_trailing_newline=True)
    env.filters["tojson"] = _tojson
    env.filters["b64encode"] = _b64encode
    env.filters["urlquote"] = _urlquote
    env.policies["json.dumps_function"] = _tojson
    return env


ENV = _environment()

class Part(NamedTuple):
    """A piece of a rendered `PartsTemplate`: the template's own text, or one value."""

    text: str
    value: bool
    encoded: bool = False


# While a `PartsTemplate` renders, each `{{ ... }}` output is collected here and only a mark
# stands in the text, so the caller learns which characters are values and which the template.
_VALUES: ContextVar[list[Part] | None] = ContextVar("servicegate_template_values", default=None)
_MARK = "\x00"


def _collect(value: Any) -> Any:
    values = _VALUES.get()
    if values is None:
        return value  # a constant Jinja folds while compiling: template text like any other
    values.append(Part(str(value), True, isinstance(value, Encoded)))
    return _MARK


_PARTS_ENV = ENV.overlay(finalize=_collect)


def constant_text(text: str, constants: dict[str, Any]) -> str | None:
    """`text` rendered now when every variable it uses is one of `constants` (values known at
    load time, such as the gateway's own address); None when it needs a request's variables
    or does not parse (compiling it reports why)."""
    try:
        names = meta.find_undeclared_variables(ENV.parse(text))
    except TemplateError:
        return None
    if not names or not names <= constants.keys():
        return None
    try:
        return ENV.from_string(text).render(constants)
    except TemplateError:
        return None


class Value:
    """A compiled value: `render(vars)` produces the JSON value for one invocation."""

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def render(self, variables: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Literal(Value):
    __slots__ = ("value",)

    def __init__(self, where: str, value: Any) -> None:
        super().__init__(where)
        self.value = value

    def render(self, variables: dict[str, Any]) -> Any:
        return self.value


class NativeExpression(Value):
    __slots__ = ("expr",)

    def __init__(self, where: str, source: str) -> None:
        super().__init__(where)
        try:
            self.expr = ENV.compile_expression(source, undefined_to_none=False)
        except TemplateError as exc:
            raise ExpressionError(f"{where}: invalid expression {{{{{source}}}}}: {exc}") from None

    def render(self, variables: dict[str, Any]) -> Any:
        try:
            result = self.expr(**variables)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return result
        except Exception as exc:
            raise TemplateFailure(self.where, exc) from exc


class TextTemplate(Value):
    __slots__ = ("template",)

    def __init__(self, where: str, source: str) -> None:
        super().__init__(where)
        try:
            self.template = ENV.from_string(source)
        except TemplateError as exc:
            raise ExpressionError(f"{where}: invalid template: {exc}") from None

    def render(self, variables: dict[str, Any]) -> Any:
        try:
            return self.template.render(variables)
        except Exception as exc:
            raise TemplateFailure(self.where, exc) from exc


class PartsTemplate(Value):
    """A text template that renders to its parts: each the output of one `{{ ... }}` or the
    template's own text between them. Lets a URL template encode
    each value for the URL component it lands in."""

    __slots__ = ("template",)

    def __init__(self, where: str, source: str) -> None:
        super().__init__(where)
        if _MARK in source:
            raise ExpressionError(f"{where}: a template may not contain NUL characters")
        try:
            self.template = _PARTS_ENV.from_string(source)
        except TemplateError as exc:
            raise ExpressionError(f"{where}: invalid template: {exc}") from None

    def render(self, variables: dict[str, Any]) -> list[Part]:
        values: list[Part] = []
        token = _VALUES.set(values)
        try:
            text = self.template.render(variables)
        except Exception as exc:
            raise TemplateFailure(self.where, exc) from exc
        finally:
            _VALUES.reset(token)
        pieces = text.split(_MARK)
        if len(pieces) != len(values) + 1:
            # output captured and output again ({% set %} blocks, macros): which is which is lost
            raise TemplateFailure(self.where, ValueError(
                "values cannot be told from the template's text (captured output is not "
                "supported here)"))
        parts: list[Part] = []
        for piece, value in zip(pieces, values, strict=False):
            if piece:
                parts.append(Part(piece, False))
            parts.append(value)
        if pieces[-1]:
            parts.append(Part(pieces[-1], False))
        return parts


class JmesPath(Value):
    __slots__ = ("compiled",)

    def __init__(self, where: str, source: Any) -> None:
        super().__init__(where)
        if not isinstance(source, str) or not source.strip():
            raise ExpressionError(f"{where}: {JMESPATH_KEY} needs an expression string")
        try:
            self.compiled = jmespath.compile(source)
        except jmespath.exceptions.JMESPathError as exc:
            raise ExpressionError(f"{where}: invalid JMESPath {source!r}: {exc}") from None

    def render(self, variables: dict[str, Any]) -> Any:
        try:
            return self.compiled.search(variables)
        except Exception as exc:
            raise TemplateFailure(self.where, exc) from exc


class MappingValue(Value):
    __slots__ = ("items",)

    def __init__(self, where: str, items: list[tuple[str, Value]]) -> None:
        super().__init__(where)
        self.items = items

    def render(self, variables: dict[str, Any]) -> Any:
        return {key: value.render(variables) for key, value in self.items}


class ListValue(Value):
    __slots__ = ("values",)

    def __init__(self, where: str, values: list[Value]) -> None:
        super().__init__(where)
        self.values = values

    def render(self, variables: dict[str, Any]) -> Any:
        return [value.render(variables) for value in self.values]


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def compile_value(value: Any, where: str) -> Value:
    """Compile a YAML value; ExpressionError names `where` (e.g. `action.body.id`)."""
    if isinstance(value, str):
        whole = _WHOLE_EXPRESSION.match(value.strip())
        if whole and "{%" not in value:
            return NativeExpression(where, whole.group("expr"))
        if _is_template(value):
            return TextTemplate(where, value)
        return Literal(where, value)
    if isinstance(value, dict):
        if JMESPATH_KEY in value:
            if len(value) != 1:
                raise ExpressionError(f"{where}: an object with {JMESPATH_KEY} has no other keys")
            return JmesPath(where, value[JMESPATH_KEY])
        items = [(str(k), compile_value(v, f"{where}.{k}")) for k, v in value.items()]
        if all(isinstance(v, Literal) for _, v in items):
            return Literal(where, value)
        return MappingValue(where, items)
    if isinstance(value, list):
        values = [compile_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if all(isinstance(v, Literal) for v in values):
            return Literal(where, value)
        return ListValue(where, values)
    return Literal(where, value)


def compile_text(value: str, where: str) -> Value:
    """A value that always renders to a string (URLs, header values)."""
    if _is_template(value):
        return TextTemplate(where, value)
    return Literal(where, value)


def compile_parts(value: str, where: str) -> Value:
    """A string whose rendered values the caller treats apart from its text (URLs): a
    `PartsTemplate`, or a `Literal` when there is nothing to render."""
    if _is_template(value):
        return PartsTemplate(where, value)
    return Literal(where, value)


def is_literal(value: Value) -> bool:
    return isinstance(value, Literal)


class Condition:
    """A `when:` condition: a Jinja expression without braces, true or false."""

    __slots__ = ("expr", "source", "where")

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        text = source.strip()
        whole = _WHOLE_EXPRESSION.match(text)
        if whole:
            text = whole.group("expr")
        try:
            self.expr = ENV.compile_expression(text, undefined_to_none=False)
        except TemplateError as exc:
            raise ExpressionError(f"{where}: invalid condition {source!r}: {exc}") from None

    def holds(self, variables: dict[str, Any]) -> bool:
        try:
            result = self.expr(**variables)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return bool(result)
        except Exception as exc:
            raise TemplateFailure(self.where, exc) from exc


def compile_condition(source: str, where: str) -> Condition:
    return Condition(source, where)
