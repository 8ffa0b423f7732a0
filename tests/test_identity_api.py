"""GET /services/identity and /admin/identities over HTTP, in process, on both backends."""

import pytest

from servicegate.identity import generator
from servicegate.identity.model import Identity
from tests.test_auth_api import assert_problem

LUND_ANDERS = {
    "id": "p-1", "juridicalType": 1,
    "name": {"firstName": "Anders", "lastName": "Lundqvist"},
    "addresses": [{"type": "home", "street": "Storgatan", "houseNo": "1", "zipCode": "222 22",
                   "city": "Lund", "countryCode": "SE"}],
    "idnumber": "19800101-1234", "emails": ["anders@example.com"], "phoneNumbers": ["+46 1"],
    "birthDate": "1980-01-01", "partyReferenceCode": "PRC-1",
}


@pytest.fixture
async def api(gateway):
    reader = await gateway.new_client("reader", "identity:read")
    store = gateway.runtime.identity.store
    items = [Identity.model_validate(generator.identity(3, i)) for i in range(200)]
    items.append(Identity.model_validate(LUND_ANDERS))
    await store.upsert_many(items)
    gateway.reader = {"X-API-Key": reader["api_key"]}
    gateway.admin = {"X-API-Key": gateway.admin_key}
    return gateway


async def search(gw, **params):
    return await gw.client.get("/services/identity", params=params, headers=gw.reader)


async def test_contract_example(api):
    r = await search(api, **{
        "$filter": "startswith(fullname,'Anders') and addresses/any(a: a/city eq 'Lund')",
        "$orderby": "fullname desc", "$top": "50"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"count", "skip", "total", "value"}
    assert body["count"] == len(body["value"]) and body["skip"] == 0
    assert body["total"] >= 1
    names = [v["name"]["fullName"] for v in body["value"]]
    assert all(n.startswith("Anders") for n in names) and names == sorted(names, reverse=True)
    assert all(any(a["city"] == "Lund" for a in v["addresses"]) for v in body["value"])
    mine = next(v for v in body["value"] if v["id"] == "p-1")
    assert mine == {
        "id": "p-1", "juridicalType": 1,
        "name": {"firstName": "Anders", "middleName": None, "lastName": "Lundqvist",
                 "companyName": None, "fullName": "Anders Lundqvist", "salutation": None,
                 "nameSuffix": None},
        "addresses": [{"type": "home", "coAddress": None, "street": "Storgatan", "houseNo": "1",
                       "houseNoExtension": None, "zipCode": "222 22", "city": "Lund",
                       "stateCode": None, "countryCode": "SE"}],
        "idnumber": "19800101-1234", "emails": ["anders@example.com"],
        "phoneNumbers": ["+46 1"], "birthDate": "1980-01-01", "partyReferenceCode": "PRC-1"}


async def test_no_filter_pages_everything_without_overlap(api):
    seen = []
    for skip in range(0, 201, 40):
        body = (await search(api, **{"$orderby": "juridicalType", "$skip": str(skip),
                                     "$top": "40"})).json()
        assert body["total"] == 201 and body["skip"] == skip
        seen += [v["id"] for v in body["value"]]
    assert len(seen) == 201 and len(set(seen)) == 201  # ties broken by id: no overlap, no gap
    default = (await search(api)).json()
    assert default["count"] == 25 and default["total"] == 201


async def test_filters_on_every_kind_of_property(api):
    cases = {
        "idnumber eq '19800101-1234'": {"p-1"},
        "name/lastName eq 'Lundqvist' and juridicalType eq 1": {"p-1"},
        "zipcode eq '222 22'": {"p-1"},
        "tolower(lastname) eq 'lundqvist'": {"p-1"},
        "birthDate eq 1980-01-01 and partyReferenceCode in ('PRC-1', 'x')": {"p-1"},
        "id eq 'p-1' and not (city eq 'Malmö')": {"p-1"},
        "id eq 'p-1' and addresses/all(a: a/countryCode eq 'SE')": {"p-1"},
        "id eq 'p-1' and emails eq 'x'": None,  # not filterable -> 400
    }
    for flt, expected in cases.items():
        r = await search(api, **{"$filter": flt})
        if expected is None:
            assert_problem(r, 400)
            continue
        assert r.status_code == 200, (flt, r.text)
        assert {v["id"] for v in r.json()["value"]} == expected, flt


async def test_total_counts_the_same_filter(api):
    body = (await search(api, **{"$filter": "juridicalType eq 2", "$top": "3"})).json()
    companies = sum(1 for i in range(200) if generator.identity(3, i)["juridicalType"] == 2)
    assert body["total"] == companies and body["count"] == 3
    assert all(v["juridicalType"] == 2 for v in body["value"])
    beyond = (await search(api, **{"$filter": "juridicalType eq 2", "$skip": "1000"})).json()
    assert beyond == {"count": 0, "skip": 1000, "total": companies, "value": []}


@pytest.mark.parametrize(("params", "parameter", "position", "fragment"), [
    ({"$filter": "juridicalType eq 'x'"}, "$filter", 17, "whole number"),
    ({"$filter": "fullname eq 'Anders"}, "$filter", 12, "unterminated string"),
    ({"$filter": "(fullname eq 'a'"}, "$filter", 16, "missing ')'"),
    ({"$filter": "fullname eq 'a')"}, "$filter", 15, "unbalanced ')'"),
    ({"$filter": "shoesize eq 42"}, "$filter", 0, "unknown property 'shoesize'"),
    ({"$filter": "fullname eq 'a' or x eq '" + "y" * 2100 + "'"}, "$filter", 2048, "longer than"),
    ({"$orderby": "fullname, shoesize"}, "$orderby", 10, "unknown property"),
    ({"$top": "101"}, "$top", 0, "at most 100"),
    ({"$top": "-1"}, "$top", 0, "must not be negative"),
    ({"$skip": "-3"}, "$skip", 0, "must not be negative"),
    ({"$skip": "2.5"}, "$skip", 1, "whole number"),
    ({"$top": ""}, "$top", 0, "empty"),
    ({"$skip": ""}, "$skip", 0, "empty"),
    ({"$filter": ""}, "$filter", 0, "empty"),
    ({"$orderby": " "}, "$orderby", 0, "empty"),
])
async def test_bad_queries_are_400_with_position(api, params, parameter, position, fragment):
    body = assert_problem(await search(api, **params), 400)
    assert body["parameter"] == parameter and body["position"] == position
    assert fragment in body["detail"]


async def test_unknown_and_repeated_options(api):
    body = assert_problem(await search(api, **{"$expand": "x"}), 400)
    assert "$expand" in body["detail"]
    r = await api.client.get("/services/identity?$top=1&$top=2", headers=api.reader)
    assert "more than once" in assert_problem(r, 400)["detail"]


@pytest.mark.parametrize(("name", "meant"), [
    ("filter", "$filter"), ("top", "$top"), ("orderby", "$orderby"), ("skip", "$skip"),
    ("select", "$select"), ("$fitler", "$filter"), ("$Filter", "$filter"),
    ("$orderBy", "$orderby"), ("$tpo", "$top"), ("count", "$count"), ("$selct", "$select"),
])
async def test_misspelt_or_unprefixed_options_name_the_option(api, name, meant):
    """Ignoring `filter=` would answer the unfiltered first page as if it were the result."""
    body = assert_problem(await search(api, **{name: "fullname eq 'x'"}), 400)
    assert body["parameter"] == name
    assert f"did you mean {meant}?" in body["detail"], body["detail"]


async def test_unrelated_parameters_are_refused_listing_the_options(api):
    body = assert_problem(await search(api, q="anders"), 400)
    assert "did you mean" not in body["detail"] and "$filter" in body["detail"]


async def test_count_is_accepted_and_the_total_always_answered(api):
    plain = (await search(api, **{"$filter": "city eq 'Lund'"})).json()
    for value in ("true", "false", "True"):
        r = await search(api, **{"$filter": "city eq 'Lund'", "$count": value})
        assert r.status_code == 200, r.text
        assert r.json() == plain
    for value in ("yes", "1", "truee"):
        body = assert_problem(await search(api, **{"$count": value}), 400)
        assert body["parameter"] == "$count" and "true or false" in body["detail"]
    assert "empty" in assert_problem(await search(api, **{"$count": ""}), 400)["detail"]


async def test_select_answers_the_named_properties_and_the_id(api):
    r = await search(api, **{"$filter": "idnumber eq '19800101-1234'",
                             "$select": "fullName,idnumber"})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == [{"id": "p-1", "name": {"fullName": "Anders Lundqvist"},
                                  "idnumber": "19800101-1234"}]
    r = await search(api, **{"$filter": "id eq 'p-1'",
                             "$select": " CITY , name/lastName,emails, birthdate,name/firstName"})
    assert r.json()["value"] == [{
        "id": "p-1", "name": {"firstName": "Anders", "lastName": "Lundqvist"},
        "addresses": [{"city": "Lund"}], "emails": ["anders@example.com"],
        "birthDate": "1980-01-01"}]
    # a whole member covers its members; `*` is everything
    r = await search(api, **{"$filter": "id eq 'p-1'", "$select": "name/fullName,name"})
    assert set(r.json()["value"][0]) == {"id", "name"}
    assert len(r.json()["value"][0]["name"]) == 7
    whole = (await search(api, **{"$filter": "id eq 'p-1'"})).json()
    assert (await search(api, **{"$filter": "id eq 'p-1'", "$select": "*"})).json() == whole
    # paging and totals are those of the same search without $select
    page = (await search(api, **{"$select": "id", "$top": "7", "$skip": "3"})).json()
    assert page["total"] == 201 and page["count"] == 7
    assert all(set(v) == {"id"} for v in page["value"])


@pytest.mark.parametrize(("select", "position", "fragment"), [
    ("fullName,shoesize", 9, "unknown property 'shoesize'"),
    ("fulName", 0, "did you mean 'name/fullName'?"),
    ("idnumber,  adresses", 11, "did you mean 'addresses'?"),
    ("idnumber,,fullName", 9, "a property is missing"),
    ("idnumber,", 9, "a property is missing"),
    ("x" * 1100, 1024, "longer than"),
])
async def test_select_errors_name_the_property(api, select, position, fragment):
    body = assert_problem(await search(api, **{"$select": select}), 400)
    assert body["parameter"] == "$select" and body["position"] == position
    assert fragment in body["detail"], body["detail"]


async def test_injection_attempts_are_plain_values(api):
    for value in ["' or 1=1 --", "x'; DROP TABLE identities; --", "%", "_", "\\"]:
        quoted = value.replace("'", "''")
        r = await search(api, **{"$filter": f"fullname eq '{quoted}' or "
                                            f"contains(fullname, '{quoted}')"})
        assert r.status_code == 200 and r.json()["total"] == 0, value
    assert (await search(api)).json()["total"] == 201


async def test_scope_is_required(api):
    other = await api.new_client("other", "services")
    r = await api.client.get("/services/identity", headers={"X-API-Key": other["api_key"]})
    assert_problem(r, 403)
    assert_problem(await api.client.get("/services/identity"), 401)


async def test_admin_put_get_delete(api):
    path = "/admin/identities/new-1"
    body = {"juridicalType": 2, "name": {"companyName": "Fjord Data AS"},
            "addresses": [{"city": "Bergen", "countryCode": "NO"}]}
    r = await api.client.put(path, json=body, headers=api.admin)
    assert r.status_code == 201, r.text
    assert r.json()["name"]["fullName"] == "Fjord Data AS"
    found = (await search(api, **{"$filter": "city eq 'Bergen' and id eq 'new-1'"})).json()
    assert found["total"] == 1
    body["addresses"] = [{"city": "Oslo"}]
    r = await api.client.put(path, json=body, headers=api.admin)
    assert r.status_code == 200 and r.json()["addresses"][0]["city"] == "Oslo"
    gone = (await search(api, **{"$filter": "city eq 'Bergen' and id eq 'new-1'"})).json()
    assert gone["total"] == 0  # addresses replaced, not appended
    assert (await api.client.get(path, headers=api.admin)).json()["id"] == "new-1"
    assert (await api.client.delete(path, headers=api.admin)).status_code == 204
    assert_problem(await api.client.delete(path, headers=api.admin), 404)
    assert_problem(await api.client.get(path, headers=api.admin), 404)


async def test_admin_rejects_bad_identities_and_changes_nothing(api):
    path = "/admin/identities/p-1"
    before = (await api.client.get(path, headers=api.admin)).json()
    for body, fragment in [
        ({"juridicalType": 7}, "invalid"),
        ({"id": "other"}, "differs"),
        ({"name": {"firstName": "x" * 500}}, "invalid"),
        ({"unknown": 1}, "invalid"),
        ([1, 2], "JSON object"),
    ]:
        r = await api.client.put(path, json=body, headers=api.admin)
        assert fragment in assert_problem(r, 400)["detail"]
    assert (await api.client.get(path, headers=api.admin)).json() == before
    r = await api.client.put("/admin/identities/bad%20id", json={}, headers=api.admin)
    assert_problem(r, 400)
    r = await api.client.put(path, json={}, headers=api.reader)
    assert_problem(r, 403)


async def test_openapi_documents_identity_routes(api):
    doc = (await api.client.get("/openapi.json")).json()
    params = {p["name"] for p in doc["paths"]["/services/identity"]["get"]["parameters"]}
    assert params == {"$filter", "$skip", "$top", "$orderby", "$select", "$count"}
    assert set(doc["paths"]["/admin/identities/{identity_id}"]) == {"put", "get", "delete"}


async def test_identity_route_under_a_base_path(tmp_path, sqlite_url):
    import httpx

    from servicegate.app import create_app
    from servicegate.runtime import Runtime
    from servicegate.storage.engine import create_engine
    from servicegate.storage.migrate import upgrade
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, sqlite_url, server={"base_path": "/gw"})
    engine = create_engine(sqlite_url)
    await upgrade(engine)
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime
    reader = await runtime.clients.create("r", ["identity:read"])
    await runtime.identity.store.upsert_many([Identity.model_validate(LUND_ANDERS)])
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw") as client:
            h = {"X-API-Key": reader.api_key}
            r = await client.get("/gw/services/identity", params={"$filter": "city eq 'Lund'"},
                                 headers=h)
            assert r.json()["total"] == 1
            body = assert_problem(await client.get("/gw/services/identity",
                                                   params={"$top": "x"}, headers=h), 400)
            assert body["instance"] == "/gw/services/identity"
    finally:
        await runtime.stop()
