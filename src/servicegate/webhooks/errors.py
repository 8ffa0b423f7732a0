"""Errors of event publishing that callers outside the package answer (kept apart from the
publisher so that compiling an `event` action needs no database code)."""

from __future__ import annotations


class EventIdConflict(Exception):
    """A caller-supplied event id is already used by another publisher."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event id {event_id!r} is already used by another publisher")
        self.event_id = event_id
