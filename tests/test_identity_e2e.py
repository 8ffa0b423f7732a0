"""End to end: generate a file, import it with the CLI, search through `servicegate serve`."""

import httpx
import orjson
import pytest

from servicegate.identity import generator
from tests.support.processes import GatewayProcess, free_port, gateway_env


@pytest.mark.e2e
def test_search_over_http_on_imported_data(tmp_path, database_url, engine):
    gw = GatewayProcess(tmp_path, gateway_env(tmp_path, database_url), free_port())
    data = tmp_path / "people.jsonl"
    gw.cli("identities", "generate", "2000", "--seed", "21", "--out", str(data))
    gw.cli("identities", "import", str(data))
    reader = gw.create_client("case-system", "identity:read")
    admin = gw.create_client("ops", "admin")
    people = [generator.identity(21, i) for i in range(2000)]
    gw.start()
    try:
        with httpx.Client(base_url=gw.url, timeout=10,
                          headers={"X-API-Key": reader["api_key"]}) as http:
            target = people[1234]
            r = http.get("/services/identity",
                         params={"$filter": f"idnumber eq '{target['idnumber']}'"})
            assert r.status_code == 200, r.text
            assert r.json()["value"] == [target] or target in r.json()["value"]

            flt = "startswith(fullname,'Anders') and addresses/any(a: a/city eq 'Lund')"
            r = http.get("/services/identity", params={"$filter": flt, "$orderby": "fullname desc",
                                                       "$top": "50"})
            expected = sorted(
                (p for p in people if p["name"]["fullName"].startswith("Anders")
                 and any(a["city"] == "Lund" for a in p["addresses"])),
                key=lambda p: (p["name"]["fullName"], _neg(p["id"])), reverse=True)
            body = r.json()
            assert body["total"] == len(expected) > 0
            assert [v["id"] for v in body["value"]] == [p["id"] for p in expected[:50]]

            # pages walked with a tie-heavy key never overlap or skip
            seen = []
            for skip in range(0, 2000, 100):
                page = http.get("/services/identity", params={
                    "$orderby": "juridicalType desc", "$skip": skip, "$top": 100}).json()
                seen += [v["id"] for v in page["value"]]
            assert len(seen) == 2000 == len(set(seen))

            r = http.get("/services/identity", params={"$filter": "city eq 'Lund"})
            assert r.status_code == 400
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["position"] == 8 and "unterminated" in r.json()["detail"]

            put = http.put("/admin/identities/e2e-1", content=orjson.dumps({
                "juridicalType": 1, "name": {"firstName": "Zlatan", "lastName": "Testsson"}}),
                headers={"X-API-Key": admin["api_key"], "Content-Type": "application/json"})
            assert put.status_code == 201, put.text
            found = http.get("/services/identity",
                             params={"$filter": "lastname eq 'Testsson'"}).json()
            assert [v["id"] for v in found["value"]] == ["e2e-1"]
    finally:
        gw.stop()


def _neg(text):
    """Sort key component that reverses the id order inside a reversed sort (id stays asc)."""
    return (*(-ord(c) for c in text), 1)
