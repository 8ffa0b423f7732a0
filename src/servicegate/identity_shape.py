"""The contract's identity shape: the property paths configuration and sources may name."""

from __future__ import annotations

SCALAR_PATHS = frozenset({
    "id", "juridicalType", "idnumber", "birthDate", "partyReferenceCode",
    "name/firstName", "name/middleName", "name/lastName", "name/companyName", "name/fullName",
    "name/salutation", "name/nameSuffix",
})
ADDRESS_MEMBERS = frozenset({
    "type", "coAddress", "street", "houseNo", "houseNoExtension", "zipCode", "city",
    "stateCode", "countryCode",
})
TYPES = {"juridicalType": "int", "birthDate": "date"}
