"""The explicit map of what a filter or `$orderby` may name, and the columns behind each name.

Names are case-insensitive. Each property has its contract path (`name/lastName`) and flat
aliases (`lastname`). Address properties belong to the `addresses` collection: inside
`addresses/any(a: ...)` they are reached as `a/city`; used directly (`city eq 'Lund'`,
`addresses/city eq 'Lund'`) they mean "any address has ...".
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import ColumnElement, Table

from servicegate.storage.schema import identities, identity_addresses

ValueType = Literal["string", "int", "date"]


@dataclass(frozen=True)
class Property:
    path: str  # as in the contract: name/lastName, addresses/city
    column: ColumnElement
    type: ValueType = "string"
    nullable: bool = True
    lower: ColumnElement | None = None  # a column holding str.lower() of this one
    collection: str | None = None  # the collection it belongs to (addresses)
    max_int: int = 2**31 - 1  # integer literals beyond +-max_int are refused


@dataclass(frozen=True)
class Collection:
    path: str  # addresses
    table: Table
    parent_key: ColumnElement  # identity_addresses.identity_id
    owner_key: ColumnElement  # identities.id
    members: dict[str, Property] = field(default_factory=dict)  # lower-case member name -> prop


@dataclass
class PropertyMap:
    table: Table
    key: ColumnElement  # the tie-breaker for ordering and the identity id
    properties: dict[str, Property] = field(default_factory=dict)  # lower-case name/alias -> prop
    collections: dict[str, Collection] = field(default_factory=dict)
    # startswith: "range" (>= p AND < p', exact in code-point order: the gateway's own tables,
    # whose text columns are BINARY on SQLite and COLLATE "C" on PostgreSQL) or "pattern"
    # (LIKE/GLOB, exact in any collation) for external tables
    prefix: Literal["range", "pattern"] = "range"

    def add(self, prop: Property, *aliases: str) -> None:
        for name in (prop.path, *aliases):
            self.properties[name.lower()] = prop

    def suggest(self, name: str) -> str:
        """"; did you mean 'x'?" for a near miss, else ""."""
        shown = {key: (prop.path if key == prop.path.lower() else key)
                 for key, prop in self.properties.items()}
        shown.update({key: coll.path for key, coll in self.collections.items()})
        close = difflib.get_close_matches(name.lower(), sorted(shown), n=1)
        return f"; did you mean {shown[close[0]]!r}?" if close else ""

    def known(self) -> list[str]:
        return sorted({p.path for p in self.properties.values()})


def _snake_to_flat(path: str) -> str:
    return path.rsplit("/", 1)[-1].lower()


def identity_properties() -> PropertyMap:
    """The gateway's own identity tables."""
    t, a = identities, identity_addresses
    pm = PropertyMap(table=t, key=t.c.id)
    pm.add(Property("id", t.c.id, nullable=False))
    pm.add(Property("juridicalType", t.c.juridical_type, "int", nullable=False, max_int=32767),
           "juridicaltype")
    pm.add(Property("idnumber", t.c.idnumber))
    pm.add(Property("birthDate", t.c.birth_date, "date"))
    pm.add(Property("partyReferenceCode", t.c.party_reference_code))
    for path, column, lower in (
        ("name/firstName", t.c.first_name, t.c.first_name_lc),
        ("name/middleName", t.c.middle_name, None),
        ("name/lastName", t.c.last_name, t.c.last_name_lc),
        ("name/companyName", t.c.company_name, t.c.company_name_lc),
        ("name/salutation", t.c.salutation, None),
        ("name/nameSuffix", t.c.name_suffix, None),
    ):
        pm.add(Property(path, column, lower=lower), _snake_to_flat(path))
    pm.add(Property("name/fullName", t.c.full_name, nullable=False, lower=t.c.full_name_lc),
           "fullname")
    addresses = Collection("addresses", a, a.c.identity_id, t.c.id)
    for member, column, lower in (
        ("type", a.c.type, None),
        ("coAddress", a.c.co_address, None),
        ("street", a.c.street, None),
        ("houseNo", a.c.house_no, None),
        ("houseNoExtension", a.c.house_no_extension, None),
        ("zipCode", a.c.zip_code, None),
        ("city", a.c.city, a.c.city_lc),
        ("stateCode", a.c.state_code, None),
        ("countryCode", a.c.country_code, None),
    ):
        prop = Property(f"addresses/{member}", column, lower=lower, collection="addresses")
        addresses.members[member.lower()] = prop
        # flat aliases (city, zipcode, ...) mean "any address"; `type` stays unaliased
        pm.add(prop, *([] if member == "type" else [member.lower()]))
    pm.collections["addresses"] = addresses
    return pm
