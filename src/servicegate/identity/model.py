"""The identity shape of the contract: validation (import, admin API) and conversion to rows."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"
JURIDICAL_TYPES = {0: "unknown", 1: "person", 2: "company"}

_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; refuse it on both backends


def _text(max_length: int) -> Any:
    return Annotated[str, StringConstraints(max_length=max_length, pattern=_NO_NUL)]


Str3, Str20, Str40, Str64 = _text(3), _text(20), _text(40), _text(64)
Str100, Str200, Str254, Str400 = _text(100), _text(200), _text(254), _text(400)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True)


class Name(_Part):
    firstName: Str200 | None = None
    middleName: Str200 | None = None
    lastName: Str200 | None = None
    companyName: Str400 | None = None
    fullName: Str400 | None = None
    salutation: Str100 | None = None
    nameSuffix: Str100 | None = None


class Address(_Part):
    type: Str40 | None = None
    coAddress: Str200 | None = None
    street: Str200 | None = None
    houseNo: Str20 | None = None
    houseNoExtension: Str20 | None = None
    zipCode: Str20 | None = None
    city: Str100 | None = None
    stateCode: Str20 | None = None
    countryCode: Str3 | None = None


class Identity(_Part):
    id: Annotated[str, StringConstraints(pattern=ID_PATTERN)]
    juridicalType: int = Field(0, ge=0, le=2)
    name: Name = Field(default_factory=Name)
    addresses: list[Address] = Field(default_factory=list, max_length=20)
    idnumber: Str64 | None = None
    emails: list[Str254] = Field(default_factory=list, max_length=20)
    phoneNumbers: list[Str64] = Field(default_factory=list, max_length=20)
    birthDate: dt.date | None = None
    partyReferenceCode: Str64 | None = None


def full_name(name: Name, juridical_type: int) -> str:
    """The given fullName, else the company name for companies, else first middle last."""
    if name.fullName:
        return name.fullName
    if juridical_type == 2 and name.companyName:
        return name.companyName
    parts = [p for p in (name.firstName, name.middleName, name.lastName) if p]
    return " ".join(parts) or (name.companyName or "")


def complete(identity: Identity) -> Identity:
    """Fill in the derived fullName (the stored and answered identity always has one)."""
    identity.name.fullName = full_name(identity.name, identity.juridicalType)
    return identity


def document(identity: Identity) -> dict[str, Any]:
    """The identity as the API answers it (every member present, null when unknown)."""
    return orjson.loads(document_json(identity))


def document_json(identity: Identity, fullname: str | None = None) -> str:
    """`complete(identity).model_dump_json()` without changing the identity, at a third of the
    cost (the importer renders a million of these): a validated model keeps its fields, in
    declaration order, in `__dict__` (extra members are forbidden), and orjson writes dates
    as ISO 8601 as pydantic does. tests/test_identity_model.py holds the two equal."""
    doc = identity.__dict__.copy()
    name = doc["name"] = identity.name.__dict__.copy()
    name["fullName"] = fullname if fullname is not None else full_name(identity.name,
                                                                       identity.juridicalType)
    doc["addresses"] = [a.__dict__ for a in identity.addresses]
    return orjson.dumps(doc).decode()


IDENTITY_COLUMNS = (
    "id", "juridical_type", "first_name", "middle_name", "last_name", "company_name",
    "full_name", "salutation", "name_suffix", "idnumber", "birth_date", "party_reference_code",
    "first_name_lc", "last_name_lc", "company_name_lc", "full_name_lc", "doc", "updated_at",
)
ADDRESS_COLUMNS = (
    "identity_id", "position", "type", "co_address", "street", "house_no",
    "house_no_extension", "zip_code", "city", "state_code", "country_code", "city_lc",
)


def identity_values(identity: Identity, stamp: Any) -> tuple[Any, ...]:
    """One `identities` row in IDENTITY_COLUMNS order (tuples: the bulk import builds a
    million of these), updated at `stamp`. Fields are read from the models' `__dict__`:
    pydantic's `BaseModel.__getattr__` keeps CPython from specialising attribute loads on
    models, which made them cost more than the rest of this function."""
    i = identity.__dict__
    n = i["name"].__dict__
    fn = n["fullName"] or full_name(i["name"], i["juridicalType"])
    first, last, company, birth = n["firstName"], n["lastName"], n["companyName"], i["birthDate"]
    return (
        i["id"], i["juridicalType"], first, n["middleName"], last, company, fn,
        n["salutation"], n["nameSuffix"], i["idnumber"], birth, i["partyReferenceCode"],
        None if first is None else first.lower(), None if last is None else last.lower(),
        None if company is None else company.lower(), fn.lower(),
        document_json(identity, fn), stamp,
    )


def address_values(identity: Identity) -> list[tuple[Any, ...]]:
    """The identity's `identity_addresses` rows in ADDRESS_COLUMNS order."""
    key = identity.__dict__["id"]
    rows = []
    for position, address in enumerate(identity.__dict__["addresses"]):
        a = address.__dict__
        city = a["city"]
        rows.append((key, position, a["type"], a["coAddress"], a["street"], a["houseNo"],
                     a["houseNoExtension"], a["zipCode"], city, a["stateCode"],
                     a["countryCode"], None if city is None else city.lower()))
    return rows
