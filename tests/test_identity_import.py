"""Import (JSON Lines, CSV) and generation, through the Importer and the CLI, both backends."""

import json
import re

import orjson
import pytest
from sqlalchemy import text

from servicegate.identity import generator
from servicegate.identity.importer import (
    Importer,
    ImportFormatError,
    csv_records,
    detect_format,
    jsonl_records,
)
from servicegate.identity.store import IdentityStore
from tests.support.processes import SERVICEGATE, gateway_env, run_command


def good(i, **extra):
    return {"id": f"id-{i}", "juridicalType": 1,
            "name": {"firstName": "Per", "lastName": f"Test{i}"},
            "addresses": [{"city": "Lund"}], **extra}


async def ids_and_names(engine):
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, full_name FROM identities ORDER BY id"))
        return {r[0]: r[1] for r in rows}


async def test_jsonl_import_reports_every_bad_row(engine, tmp_path):
    lines = [
        json.dumps(good(1)),
        "{not json",
        "",
        json.dumps(good(2, juridicalType=9)),
        json.dumps([1, 2]),
        json.dumps(good(3)),
        json.dumps(good(1, name={"firstName": "Later", "lastName": "Wins"})),
        json.dumps({"name": {}}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with path.open("rb") as f:
        summary = await Importer(IdentityStore(engine), batch_size=2).run(jsonl_records(f))
    assert summary.imported == 3  # id-1 twice (upsert), id-3
    assert [(r.line, r.reason.split(":")[0]) for r in summary.rejections] == [
        (2, "malformed JSON"), (4, "juridicalType"), (5, "not a JSON object"), (8, "id")]
    assert await ids_and_names(engine) == {"id-1": "Later Wins", "id-3": "Per Test3"}


async def test_csv_import_with_documented_columns(engine, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(
        "\ufeffid,juridicalType,firstName,lastName,companyName,idnumber,birthDate,emails,"
        "phoneNumbers,address1.street,address1.city,address1.zipCode,address2.city\n"
        "c-1,1,Åsa,Öberg,,19700101-0000,1970-01-01,a@x.se;b@x.se,+46 1,\"Storgatan 1\",Lund,"
        "222 22,Malmö\n"
        "c-2,2,,,\"Fjord, Data\nAS\",,,,,,,,\n"
        "c-3,x,,,,,,,,,,,\n"
        "c-4,1,too,few\n"
        "c-5,1,Ok,Row,,,not-a-date,,,,,,\n", encoding="utf-8")
    store = IdentityStore(engine)
    with path.open("rb") as f:
        summary = await Importer(store).run(csv_records(f))
    assert summary.imported == 2
    assert [r.line for r in summary.rejections] == [5, 6, 7]  # c-2 spans lines 3-4
    assert "juridicalType" in summary.rejections[0].reason
    assert "cells" in summary.rejections[1].reason
    assert "birthDate" in summary.rejections[2].reason
    doc = orjson.loads(await store.get("c-1"))
    assert doc["emails"] == ["a@x.se", "b@x.se"] and doc["birthDate"] == "1970-01-01"
    assert [a["city"] for a in doc["addresses"]] == ["Lund", "Malmö"]
    assert doc["addresses"][0]["zipCode"] == "222 22"
    company = orjson.loads(await store.get("c-2"))
    assert company["name"]["fullName"] == "Fjord, Data\nAS" and company["addresses"] == []


def test_csv_header_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,shoeSize\n1,42\n")
    with path.open("rb") as f, pytest.raises(ImportFormatError, match="shoeSize"):
        list(csv_records(f))
    path.write_text("firstName\nx\n")
    with path.open("rb") as f, pytest.raises(ImportFormatError, match="id column"):
        list(csv_records(f))
    with pytest.raises(ImportFormatError, match="cannot tell"):
        detect_format("people.xlsx", None)


async def _explode_on_city(engine):
    """A database-side refusal that only happens after the identity row was written."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text(
                "CREATE TRIGGER explode BEFORE INSERT ON identity_addresses "
                "WHEN NEW.city = 'Explode' BEGIN SELECT RAISE(ABORT, 'city refused'); END"))
        else:
            await conn.execute(text(
                "CREATE OR REPLACE FUNCTION explode() RETURNS trigger AS $$ BEGIN "
                "IF NEW.city = 'Explode' THEN RAISE EXCEPTION 'city refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            await conn.execute(text("DROP TRIGGER IF EXISTS explode ON identity_addresses"))
            await conn.execute(text(
                "CREATE TRIGGER explode BEFORE INSERT ON identity_addresses "
                "FOR EACH ROW EXECUTE FUNCTION explode()"))


@pytest.mark.parametrize("new", [False, True])
async def test_a_refused_row_is_never_half_written(engine, tmp_path, new):
    await _explode_on_city(engine)
    rows = [good(1), good(2, addresses=[{"city": "Lund"}, {"city": "Explode"}]), good(3)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    with path.open("rb") as f:
        summary = await Importer(IdentityStore(engine), batch_size=10, new=new).run(
            jsonl_records(f))
    assert summary.imported == 2
    assert [r.line for r in summary.rejections] == [2]
    assert "refused by the database" in summary.rejections[0].reason
    assert set(await ids_and_names(engine)) == {"id-1", "id-3"}  # no identity without addresses
    async with engine.connect() as conn:
        orphans = (await conn.execute(text(
            "SELECT count(*) FROM identity_addresses WHERE identity_id = 'id-2'"))).scalar()
    assert orphans == 0
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER explode ON identity_addresses"))


def test_generator_is_deterministic_and_valid():
    first = list(generator.identities(300, seed=5))
    assert first == list(generator.identities(300, seed=5))
    assert first != list(generator.identities(300, seed=6))
    assert generator.identity(5, 123) == first[123]
    kinds = {i["juridicalType"] for i in first}
    assert kinds == {1, 2}
    for item in first:
        number = item["idnumber"]
        if re.fullmatch(r"\d{8}-\d{4}", number):  # Swedish personnummer: Luhn over YYMMDDNNN
            digits = number[2:8] + number[9:12]
            assert generator.luhn_digit(digits) == number[-1]
        if item["juridicalType"] == 1:
            assert item["birthDate"] and item["name"]["fullName"].startswith(
                item["name"]["firstName"])
    countries = {i["addresses"][0]["countryCode"] for i in first}
    assert countries == {"SE", "NO", "DK", "FI"}


def _cli(tmp_path, database_url, *args):
    env = gateway_env(tmp_path, database_url)
    return run_command([SERVICEGATE, *args], cwd=tmp_path, env=env, timeout=120)


@pytest.mark.e2e
def test_cli_generate_and_import(tmp_path, database_url, engine):
    out = tmp_path / "people.jsonl"
    r = _cli(tmp_path, database_url, "identities", "generate", "500", "--seed", "9", "--out",
             str(out))
    assert r.returncode == 0, r.stderr
    lines = out.read_bytes().splitlines()
    assert len(lines) == 500 and orjson.loads(lines[7]) == generator.identity(9, 7)
    with out.open("ab") as f:
        f.write(b'{"id": "bad id!"}\n{broken\n')
    r = _cli(tmp_path, database_url, "identities", "import", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "imported 500 identities" in r.stdout and "rejected 2" in r.stdout
    # each rejected row is listed once, live on stderr; the summary only counts them
    assert "line 501: id:" in r.stderr and "line 502: malformed JSON" in r.stderr
    assert "line 501" not in r.stdout
    r = _cli(tmp_path, database_url, "identities", "generate", "50", "--seed", "10")
    assert r.returncode == 0, r.stderr
    assert "generated 50 identities into the database" in r.stdout
    r = _cli(tmp_path, database_url, "identities", "import", str(tmp_path / "missing.csv"))
    assert r.returncode == 2 and "no such file" in r.stderr


async def _index_names(engine):
    from servicegate.identity.bulk import _definitions

    async with engine.connect() as conn:
        return {name for name, _ in await _definitions(conn)}


async def test_initial_load_rebuilds_the_indexes(engine, tmp_path):
    from servicegate.identity.bulk import deferred_indexes

    before = await _index_names(engine)
    assert "ix_identities_full_name" in before
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(generator.identity(4, i)) for i in range(300)))
    store = IdentityStore(engine)
    async with deferred_indexes(engine) as dropped:
        assert dropped and await _index_names(engine) == set()
        with path.open("rb") as f:
            await Importer(store).run(jsonl_records(f))
    assert await _index_names(engine) == before
    async with deferred_indexes(engine) as dropped:  # not empty any more: indexes stay
        assert not dropped and await _index_names(engine) == before
    page = await store.searcher().search("startswith(fullname,'A')", "fullname")
    assert page.total == sum(1 for i in range(300)
                             if generator.identity(4, i)["name"]["fullName"].startswith("A"))


async def test_indexes_come_back_after_an_interrupted_initial_load(engine):
    from servicegate.identity.bulk import deferred_indexes, recover

    before = await _index_names(engine)
    cm = deferred_indexes(engine)
    assert await cm.__aenter__() is True  # the process "dies" here: no __aexit__
    assert await _index_names(engine) == set()
    assert await recover(engine) == len(before)
    assert await _index_names(engine) == before
    assert await recover(engine) == 0


async def test_a_failing_initial_load_still_rebuilds(engine):
    from servicegate.identity.bulk import deferred_indexes

    before = await _index_names(engine)
    with pytest.raises(RuntimeError):
        async with deferred_indexes(engine):
            raise RuntimeError("disk full")
    assert await _index_names(engine) == before


@pytest.mark.parametrize(("workers", "new"), [(1, False), (0, True), (1, True)])
async def test_parallel_parsing_keeps_file_order_and_reports_every_bad_row(engine, tmp_path,
                                                                          workers, new):
    """Parsing in a worker process (chunks of 3) and plain inserts into an empty table: the
    same outcome as in-process upserts, a later line for an id wins within and across chunks
    (across chunks the plain insert is refused and the chunk upserted), every rejection has
    its line number."""
    lines = [orjson.dumps(good(i)) for i in range(1, 12)]
    lines[4] = b"{not json"                                               # line 5
    lines[5] = orjson.dumps(good(4, name={"firstName": "Same", "lastName": "Chunk"}))  # line 6
    lines[9] = orjson.dumps(good(2, name={"firstName": "Next", "lastName": "Chunk"}))  # line 10
    lines.append(orjson.dumps({"id": "bad id!"}))                          # line 12
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with path.open("rb") as f:
        summary = await Importer(IdentityStore(engine), batch_size=3, workers=workers,
                                 new=new).run(jsonl_records(f))
    assert [(r.line, r.reason.split(":")[0]) for r in summary.rejections] == [
        (5, "malformed JSON"), (12, "id")]
    assert summary.imported == 10
    names = await ids_and_names(engine)
    assert names["id-4"] == "Same Chunk" and names["id-2"] == "Next Chunk"
    assert set(names) == {f"id-{i}" for i in (1, 2, 3, 4, 7, 8, 9, 11)}


@pytest.mark.e2e
async def test_cli_import_parses_in_worker_processes(tmp_path, database_url, engine):
    """The real command with a worker process (spawned from the console script) and several
    batches: every identity arrives, a bad line is reported with its number."""
    out = tmp_path / "people.jsonl"
    lines = [orjson.dumps(generator.identity(11, i)) for i in range(450)]
    lines.insert(200, b"{broken")
    out.write_bytes(b"\n".join(lines) + b"\n")
    r = _cli(tmp_path, database_url, "identities", "import", str(out), "--batch-size", "100",
             "--workers", "1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "imported 450 identities" in r.stdout and "line 201: malformed JSON" in r.stderr
    r = _cli(tmp_path, database_url, "identities", "generate", "300", "--seed", "12",
             "--batch-size", "100", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "generated 300 identities into the database" in r.stdout
    assert len(await ids_and_names(engine)) == 750
