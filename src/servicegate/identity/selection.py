"""`$select`: the properties of each identity to answer, in the identity's own shape.

`$select=fullName,idnumber` answers `{"id": ..., "name": {"fullName": ...}, "idnumber": ...}`:
aliases resolve to their paths as in `$filter`, so a client reads a selected identity with
the same model as a whole one. The id is always answered. Names are case-insensitive.
"""

from __future__ import annotations

from typing import Any

import orjson

from servicegate.identity.odata.errors import QueryError
from servicegate.identity_shape import ADDRESS_MEMBERS, SCALAR_PATHS
from servicegate.validation import nearest

MAX_SELECT_LENGTH = 1024
# A selection maps a member to None (the whole value) or to the selection of its members.
Selection = dict[str, Any]


def _selectable() -> dict[str, tuple[str, ...]]:
    """Lower-case name or alias -> path, as `$filter` names them (flat aliases for the name
    members and the address members but `type`), plus the members `$filter` cannot use."""
    paths = [*SCALAR_PATHS, "name", "addresses", "emails", "phoneNumbers",
             *(f"addresses/{member}" for member in ADDRESS_MEMBERS)]
    names = {path.lower(): tuple(path.split("/")) for path in paths}
    for path in paths:
        head, _, member = path.partition("/")
        if member and (head == "name" or member != "type"):
            names.setdefault(member.lower(), (head, member))
    return names


SELECTABLE = _selectable()


def parse_select(text: str | None) -> Selection | None:
    """The selection `$select` names, or None for every property (no `$select`, or `*`)."""
    if text is None or text.strip() == "*":
        return None
    if len(text) > MAX_SELECT_LENGTH:
        raise QueryError(f"longer than {MAX_SELECT_LENGTH} characters", MAX_SELECT_LENGTH,
                         "$select")
    selection: Selection = {"id": None}
    pos = 0
    for item in text.split(","):
        name = item.strip()
        at = pos + len(item) - len(item.lstrip())
        pos += len(item) + 1
        if not name:
            raise QueryError("a property is missing (names are separated by commas)", at,
                             "$select")
        path = SELECTABLE.get(name.lower())
        if path is None:
            shown = {key: "/".join(p) for key, p in SELECTABLE.items()}
            guess = nearest(name.lower(), shown)
            hint = f"; did you mean {shown[guess]!r}?" if guess else ""
            raise QueryError(f"unknown property {name!r}{hint}", at, "$select")
        _add(selection, path)
    return selection


def _add(selection: Selection, path: tuple[str, ...]) -> None:
    head, rest = path[0], path[1:]
    if not rest or (head in selection and selection[head] is None):
        selection[head] = None  # the whole value covers any of its members
        return
    _add(selection.setdefault(head, {}), rest)


def project(value: Any, selection: Selection) -> Any:
    """The selected members of one identity (or of each element of a list), in its order."""
    if isinstance(value, list):
        return [project(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: member if selection[key] is None else project(member, selection[key])
            for key, member in value.items() if key in selection}


def project_json(document: bytes, selection: Selection) -> bytes:
    return orjson.dumps(project(orjson.loads(document), selection))
