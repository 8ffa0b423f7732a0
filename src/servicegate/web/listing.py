"""Query parameters of paginated list endpoints (jobs, deliveries): one way to check them,
each failure a 400 problem naming the parameter."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from servicegate.problems import Problem


def bad_query(name: str, message: str) -> Problem:
    return Problem(400, f"query parameter {name}: {message}", title="Invalid query",
                        errors=[{"parameter": name, "message": message}])


def known_only(query: Mapping[str, str], allowed: Collection[str]) -> None:
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise bad_query(unknown[0], f"unknown parameter (use {', '.join(sorted(allowed))})")


def one_of(query: Mapping[str, str], name: str, allowed: Collection[str]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise bad_query(name, f"one of {', '.join(allowed)}")
    return value


def limit(query: Mapping[str, str], default: int, maximum: int) -> int:
    try:
        value = int(query.get("limit", str(default)))
        if not 1 <= value <= maximum:
            raise ValueError
    except ValueError:
        raise bad_query("limit", f"an integer from 1 to {maximum}") from None
    return value


def cursor(query: Mapping[str, str], prefix: str, max_length: int) -> str | None:
    value = query.get("cursor")
    if value is not None and (len(value) > max_length or not value.startswith(prefix)):
        raise bad_query("cursor", "use the `next` value of the previous page")
    return value
