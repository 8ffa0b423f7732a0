"""The one error type of the filter language: what is wrong and where (0-based character)."""

from __future__ import annotations


class QueryError(ValueError):
    """A bad `$filter`, `$orderby`, `$skip`, `$top` or `$select`; `position` points into it."""

    def __init__(self, message: str, position: int | None = None, parameter: str = "$filter") -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.parameter = parameter

    def __str__(self) -> str:
        where = f" at position {self.position}" if self.position is not None else ""
        return f"{self.parameter}: {self.message}{where}"
