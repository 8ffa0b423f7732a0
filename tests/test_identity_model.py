"""The stored identity document and rows: the importer's fast rendering equals pydantic's."""

import datetime as dt

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from servicegate.identity import generator
from servicegate.identity.model import (
    ADDRESS_COLUMNS,
    IDENTITY_COLUMNS,
    Address,
    Identity,
    Name,
    complete,
    document_json,
)
from servicegate.identity.parsing import Parsed, parse

chars = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
text = st.one_of(st.none(), st.text(chars, max_size=12),
                 st.integers(-5, 10**6))  # numbers are coerced to strings
names = st.fixed_dictionaries({}, optional={k: text for k in Name.model_fields})
addresses = st.fixed_dictionaries({}, optional={k: text for k in Address.model_fields})
identities = st.fixed_dictionaries(
    {"id": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,10}", fullmatch=True)},
    optional={
        "juridicalType": st.integers(0, 2),
        "name": names,
        "addresses": st.lists(addresses, max_size=3),
        "idnumber": text,
        "emails": st.lists(st.text(chars, max_size=8), max_size=2),
        "phoneNumbers": st.lists(st.text(chars, max_size=8), max_size=2),
        "birthDate": st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2030, 1, 1))
                               .map(dt.date.isoformat)),
        "partyReferenceCode": text,
    })


def _pydantic_document(identity: Identity) -> str:
    return complete(identity.model_copy(deep=True)).model_dump_json()


@settings(max_examples=300, deadline=None)
@given(identities)
def test_document_json_equals_pydantics_rendering(data):
    try:
        identity = Identity.model_validate(data)
    except ValidationError:
        assume(False)  # e.g. a countryCode longer than 3
    before = identity.model_dump()
    assert document_json(identity) == _pydantic_document(identity)
    assert identity.model_dump() == before  # rendering does not change the identity


def test_document_json_on_generated_identities():
    for i in range(300):
        identity = Identity.model_validate_json(orjson.dumps(generator.identity(3, i)))
        assert document_json(identity) == _pydantic_document(identity)


def test_parse_builds_rows_in_column_order_and_reports_rejections():
    records = [
        (1, orjson.dumps(generator.identity(3, 1)), None),
        (2, b"{broken", None),
        (3, {"id": "d-1", "juridicalType": 2, "name": {"companyName": " Acme AB "},
             "addresses": [{"city": "Lund"}], "birthDate": "2001-02-03"}, None),
        (4, None, "line longer than 1048576 bytes"),
    ]
    stamp = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)
    parsed = parse(records, stamp)
    assert isinstance(parsed, Parsed)
    assert [line for line, *_ in parsed.rows] == [1, 3]
    assert [(line, reason.split(":")[0]) for line, reason in parsed.rejections] == [
        (2, "malformed JSON"), (4, "line longer than 1048576 bytes")]
    _, row, address_rows = parsed.rows[1]
    values = dict(zip(IDENTITY_COLUMNS, row, strict=True))
    assert values["id"] == "d-1" and values["full_name"] == "Acme AB"
    assert values["full_name_lc"] == "acme ab" and values["birth_date"] == dt.date(2001, 2, 3)
    assert orjson.loads(values["doc"])["name"]["fullName"] == "Acme AB"
    assert values["updated_at"] == stamp
    assert [dict(zip(ADDRESS_COLUMNS, a, strict=True))["city_lc"] for a in address_rows] == ["lund"]
