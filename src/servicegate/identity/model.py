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


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def complete(identity: Identity) -> Identity:
    """Fill in the derived fullName (the stored and answered identity always has one)."""
    identity.name.fullName = full_name(identity.name, identity.juridicalType)
    return identity


def document(identity: Identity) -> dict[str, Any]:
    """The identity as the API answers it (every member present, null when unknown)."""
    return orjson.loads(document_json(identity))


def document_json(identity: Identity) -> str:
    return complete(identity).model_dump_json()


def identity_row(identity: Identity, now: dt.datetime) -> dict[str, Any]:
    n = identity.name
    fn = full_name(n, identity.juridicalType)
    return {
        "id": identity.id,
        "juridical_type": identity.juridicalType,
        "first_name": n.firstName,
        "middle_name": n.middleName,
        "last_name": n.lastName,
        "company_name": n.companyName,
        "full_name": fn,
        "salutation": n.salutation,
        "name_suffix": n.nameSuffix,
        "idnumber": identity.idnumber,
        "birth_date": identity.birthDate,
        "party_reference_code": identity.partyReferenceCode,
        "first_name_lc": _lower(n.firstName),
        "last_name_lc": _lower(n.lastName),
        "company_name_lc": _lower(n.companyName),
        "full_name_lc": fn.lower(),
        "doc": document_json(identity),
        "updated_at": now,
    }


def address_rows(identity: Identity) -> list[dict[str, Any]]:
    return [
        {
            "identity_id": identity.id,
            "position": i,
            "type": a.type,
            "co_address": a.coAddress,
            "street": a.street,
            "house_no": a.houseNo,
            "house_no_extension": a.houseNoExtension,
            "zip_code": a.zipCode,
            "city": a.city,
            "state_code": a.stateCode,
            "country_code": a.countryCode,
            "city_lc": _lower(a.city),
        }
        for i, a in enumerate(identity.addresses)
    ]
