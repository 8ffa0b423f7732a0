"""What makes a table a lease queue (`servicegate.queue`): its columns, its due index, its page
fill, and the statuses the queue itself gives items. Defined here, beside the tables that carry
them, so that the schema needs nothing from the queue package above it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, String, text

PENDING = "pending"
DONE = "succeeded"
FAILED = "failed"
# The due index's predicate, and the condition claims and stats write out literally (a bound
# parameter would keep the planner from proving that a statement's rows are in the index).
PENDING_ONLY = f"status = '{PENDING}'"
# Percent of each heap page PostgreSQL fills on insert, leaving room for claims' HOT updates.
FILLFACTOR = 50


def queue_columns() -> list[Column[Any]]:
    """The columns a table needs to be a queue (add them to its Table definition)."""
    return [
        Column("status", String(16), nullable=False, default=PENDING),
        Column("run_at", DateTime(timezone=True), nullable=False),
        Column("lease_token", String(32), nullable=True),
        Column("lease_until", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
    ]


def queue_index(table_name: str) -> Index:
    """The index claims walk: pending items by due time (then id, the claim's full order)."""
    return Index(f"ix_{table_name}_due", "run_at", "id", sqlite_where=text(PENDING_ONLY),
                 postgresql_where=text(PENDING_ONLY))


def queue_table_options() -> dict[str, Any]:
    """Table keyword arguments for a queue table (PostgreSQL page fill, see `FILLFACTOR`)."""
    return {"postgresql_with": {"fillfactor": FILLFACTOR}}
