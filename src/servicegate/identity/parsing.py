"""Import records → database rows: validate each identity and render its stored row.

This is the importer's per-record CPU work (pydantic validation, the stored JSON document, the
search columns), about as much as the database spends writing the rows. It is a plain function
of picklable values so the importer can run it in worker processes (`parse_pool`) while the
database writes earlier batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from servicegate.identity.model import Identity, address_values, identity_values

# line number, then a dict (CSV, generator) or the raw JSON text of one identity (JSON Lines),
# or None with the reason the row is unusable
Record = tuple[int, dict[str, Any] | bytes | None, str | None]
Row = tuple[Any, ...]

@dataclass(slots=True)
class Parsed:
    """One chunk of records, in file order: the good ones as (line, identity row, address
    rows), the rejected ones as (line, reason)."""

    rows: list[tuple[int, Row, list[Row]]] = field(default_factory=list)
    rejections: list[tuple[int, str]] = field(default_factory=list)


def validation_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return f"malformed JSON: {first['ctx'].get('error', first['msg'])}"
    if first["type"] == "model_type" and not first["loc"]:
        return "not a JSON object"
    parts = []
    for e in exc.errors(include_url=False)[:5]:
        where = "/".join(str(p) for p in e["loc"]) or "(row)"
        parts.append(f"{where}: {e['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def rows_of(identity: Identity, stamp: datetime) -> tuple[Row, list[Row]]:
    """An identity's `identities` row (updated at `stamp`) and `identity_addresses` rows."""
    return identity_values(identity, stamp), address_values(identity)


def parse(records: list[Record], stamp: datetime) -> Parsed:
    out = Parsed()
    good, bad = out.rows.append, out.rejections.append
    validate_json, validate = Identity.model_validate_json, Identity.model_validate
    for line, data, problem in records:
        if problem is not None or data is None:
            bad((line, problem or "unusable row"))
            continue
        try:
            identity = validate_json(data) if isinstance(data, bytes) else validate(data)
        except ValidationError as exc:
            bad((line, validation_reason(exc)))
            continue
        row, addresses = rows_of(identity, stamp)
        good((line, row, addresses))
    return out
