"""The simplified OData filter language: lexer, parser, syntax tree, printer."""

from servicegate.identity.odata.errors import QueryError
from servicegate.identity.odata.parser import DEFAULT_LIMITS, Limits, parse

__all__ = ["DEFAULT_LIMITS", "Limits", "QueryError", "parse"]
