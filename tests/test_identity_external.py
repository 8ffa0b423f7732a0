"""`[identity] source = "sql"`: the same search over a table of another database, read-only.

The back-office table lives in a second SQLite file, or in its own schema of the PostgreSQL
test database; the gateway's own database is a separate SQLite file."""

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from servicegate.app import create_app
from servicegate.identity import generator
from servicegate.identity.odata import parse
from servicegate.runtime import Runtime
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade
from tests.conftest import make_settings
from tests.support.identity_eval import Evaluator
from tests.test_auth_api import assert_problem

COLUMNS = {
    "juridicalType": "kind", "name/firstName": "given", "name/lastName": "family",
    "name/fullName": "display", "name/companyName": "company", "idnumber": "pnr",
    "birthDate": "born", "partyReferenceCode": "ref",
}
ADDRESS_COLUMNS = {"city": "town", "zipCode": "postcode", "countryCode": "country"}


def backoffice_rows(n=120):
    people, addresses = [], []
    for i in range(n):
        g = generator.identity(11, i)
        key = f"D{i:05d}"
        people.append({"no": key, "kind": g["juridicalType"], "given": g["name"]["firstName"],
                       "family": g["name"]["lastName"], "display": g["name"]["fullName"],
                       "company": g["name"]["companyName"], "pnr": g["idnumber"],
                       "born": g["birthDate"], "ref": g["partyReferenceCode"]})
        for seq, a in enumerate(g["addresses"]):
            addresses.append({"no": key, "seq": seq, "town": a["city"],
                              "postcode": a["zipCode"], "country": a["countryCode"]})
    return people, addresses


def as_documents(people, addresses):
    docs = []
    for p in people:
        docs.append({
            "id": p["no"], "juridicalType": p["kind"],
            "name": {"firstName": p["given"], "middleName": None, "lastName": p["family"],
                     "companyName": p["company"], "fullName": p["display"],
                     "salutation": None, "nameSuffix": None},
            "addresses": [{"type": None, "coAddress": None, "street": None, "houseNo": None,
                           "houseNoExtension": None, "zipCode": a["postcode"],
                           "city": a["town"], "stateCode": None, "countryCode": a["country"]}
                          for a in addresses if a["no"] == p["no"]],
            "idnumber": p["pnr"], "emails": [], "phoneNumbers": [], "birthDate": p["born"],
            "partyReferenceCode": p["ref"]})
    return docs


async def create_backoffice(url, schema):
    engine = create_engine(url)
    prefix = f"{schema}." if schema else ""
    people, addresses = backoffice_rows()
    async with engine.begin() as conn:
        if schema:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        await conn.execute(text(
            f"CREATE TABLE {prefix}debtors (no VARCHAR(20) PRIMARY KEY, kind INTEGER, "
            "given VARCHAR(100), family VARCHAR(100), display VARCHAR(200), company VARCHAR(200), "
            "pnr VARCHAR(20), born DATE, ref VARCHAR(30))"))
        await conn.execute(text(
            f"CREATE TABLE {prefix}debtor_addresses (no VARCHAR(20), seq INTEGER, "
            "town VARCHAR(100), postcode VARCHAR(20), country VARCHAR(3))"))
        rows = [{**p, "born": _date(p["born"], schema)} for p in people]
        await conn.execute(text(
            f"INSERT INTO {prefix}debtors VALUES (:no, :kind, :given, :family, :display, "
            ":company, :pnr, :born, :ref)"), rows)
        await conn.execute(text(
            f"INSERT INTO {prefix}debtor_addresses VALUES (:no, :seq, :town, :postcode, "
            ":country)"), addresses)
    await engine.dispose()
    return people, addresses


def _date(value, schema):
    import datetime as dt

    if value is None or not schema:
        return value  # SQLite stores ISO text, as SQLAlchemy's Date expects
    return dt.date.fromisoformat(value)


@pytest.fixture(params=["sqlite", "postgres"])
def backoffice_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'backoffice.db'}", ""
    return request.getfixturevalue("postgres_url"), "backoffice"


@pytest.fixture
async def external(backoffice_url, tmp_path):
    url, schema = backoffice_url
    people, addresses = await create_backoffice(url, schema)
    prefix = f"{schema}." if schema else ""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", identity={
        "source": "sql",
        "sql": {"url": url, "table": f"{prefix}debtors", "key": "no", "columns": COLUMNS,
                "addresses": {"table": f"{prefix}debtor_addresses", "key": "no",
                              "order_by": "seq", "columns": ADDRESS_COLUMNS}}})
    engine = create_engine(settings.database.url)
    await upgrade(engine)
    runtime = await Runtime.start(settings, engine=engine)
    app = create_app(settings, runtime=runtime)
    app.state.runtime = runtime
    reader = await runtime.clients.create("reader", ["identity:read"])
    admin = await runtime.clients.create("admin", ["admin"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        client.headers["X-API-Key"] = reader.api_key
        client.admin_key = admin.api_key
        client.docs = as_documents(people, addresses)
        client.backend = "postgresql" if schema else "sqlite"
        client.runtime = runtime
        yield client
    await runtime.stop()


FILTERS = [
    ("startswith(fullname,'A') and addresses/any(a: a/city eq 'Lund')", "fullname desc"),
    ("city in ('Oslo', 'Bergen') or juridicalType eq 2", "lastname, fullname"),
    ("contains(tolower(fullname), 'sen') and not (birthDate lt 1960-01-01)", "birthDate desc"),
    ("addresses/all(a: a/countryCode eq 'SE') and idnumber ne null", None),
    ("companyname eq null and zipcode ne '000'", "idnumber"),
]


@pytest.mark.parametrize(("flt", "orderby"), FILTERS)
async def test_external_search_matches_python(external, flt, orderby):
    params = {"$filter": flt, "$top": "100"}
    if orderby:
        params["$orderby"] = orderby
    r = await external.get("/services/identity", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    ev = Evaluator(external.backend)
    tree = parse(flt)
    expected = [d for d in external.docs if ev.holds(tree, d)]
    keys = [(k.split()[0], k.endswith("desc")) for k in (orderby or "").split(",") if k.strip()]
    expected = ev.sort(expected, keys)
    assert body["total"] == len(expected) and body["total"] > 0
    assert body["value"] == [_normal(d) for d in expected[:100]]


def _normal(doc):
    return orjson.loads(orjson.dumps(doc))


async def test_external_errors_and_unmapped_properties(external):
    r = await external.get("/services/identity", params={"$filter": "name/salutation eq 'Dr'"})
    body = assert_problem(r, 400)
    assert "unknown property" in body["detail"] and body["position"] == 0
    r = await external.get("/services/identity", params={"$filter": "juridicalType eq 'x'"})
    assert assert_problem(r, 400)["position"] == 17


async def test_external_source_is_read_only(external):
    admin = {"X-API-Key": external.admin_key}
    r = await external.put("/admin/identities/D00001", json={"name": {}}, headers=admin)
    assert "external read-only source" in assert_problem(r, 409)["detail"]
    table = external.runtime.settings.identity.sql.table
    with pytest.raises(DBAPIError, match=r"read-?only"):
        async with external.runtime.identity.external.begin() as conn:
            await conn.execute(text("DELETE FROM " + table))
    r = await external.get("/services/identity")
    assert r.json()["total"] == 120


def test_config_names_bad_mappings():
    from servicegate.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"identity\.sql\.columns"):
        load_settings(identity={"source": "sql", "sql": {
            "url": "sqlite:///x.db", "table": "t", "columns": {"shoeSize": "s"}}})
    with pytest.raises(ConfigError, match="plain column name"):
        load_settings(identity={"source": "sql", "sql": {
            "url": "sqlite:///x.db", "table": "t", "columns": {"idnumber": "x; drop"}}})
    with pytest.raises(ConfigError, match=r"\[identity.sql\]"):
        load_settings(identity={"source": "sql"})
