"""No input makes a server error, and every answer is what /openapi.json says. Against a
running demo gateway, with the demo client's key (it holds every scope): schemathesis generates
valid and invalid requests for every operation of /openapi.json (a bounded, derandomised number,
so each run is the same) and checks each answer's status, content type, body and headers
against the document; the corpus of bad inputs in tests/data/bad_inputs.json is replayed
against every operation."""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.support.demo import demo_api_key, start_demo_gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    gateway = start_demo_gateway(tmp_path_factory.mktemp("fuzz"))
    yield gateway
    gateway.stop()


EXAMPLES = 15  # per operation and generation mode
# what the document promises about each answer: a documented status, its content type, a body
# its schema accepts and its required headers
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance,
               response_headers_conformance]


def test_no_generated_request_makes_a_server_error(demo):
    schema = schemathesis.openapi.from_url(f"{demo.url}/openapi.json")
    headers = {"X-API-Key": demo_api_key(demo)}
    server_errors: list[str] = []
    nonconforming: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def call(case):
                try:
                    response = case.call(headers=headers, timeout=30)
                except requests.RequestException as exc:  # the server dropped the connection
                    server_errors.append(f"{exc!r}\n  {case.as_curl_command(headers)}")
                    return
                if response.status_code >= 500:
                    server_errors.append(f"{response.status_code} {response.text[:300]}\n"
                                         f"  {case.as_curl_command(headers)}")
                try:
                    case.validate_response(response, checks=CONFORMANCE, headers=headers)
                except FailureGroup as failures:  # a BaseExceptionGroup: caught by name
                    titles = "; ".join(getattr(f, "title", str(f)) for f in failures.exceptions)
                    nonconforming.append(f"{response.status_code} {titles}: "
                                         f"{response.text[:200]}\n"
                                         f"  {case.as_curl_command(headers)}")

            try:
                call()
            except Unsatisfiable:
                # nothing of this operation can be made invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE
    assert operations >= 30, "every operation of /openapi.json is generated for"
    assert not server_errors, "\n".join(server_errors[:20])
    assert not nonconforming, "\n".join(nonconforming[:20])



CORPUS = json.loads((Path(__file__).parent / "data" / "bad_inputs.json").read_text())
# path values that reach a real definition (the demo's), so bodies and queries get past routing
PATH_VALUES = {"serviceDefinition": ["echo", "score", "customers", "customer", "hello",
                                     "customer-overview"],
               "callbackName": ["echo", "payment-status"], "subPath": ["a/b"]}


def _operations(url: str) -> list[tuple[str, str, list[str]]]:
    """(method, concrete path, query parameter names) for every operation, path values filled."""
    spec = httpx.get(f"{url}/openapi.json", timeout=30).json()
    found = []
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            names = re.findall(r"\{(\w+)\}", template)
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            for values in itertools.product(*(PATH_VALUES.get(n, ["x1"]) for n in names)):
                path = template
                for name, value in zip(names, values, strict=True):
                    path = path.replace("{" + name + "}", value)
                found.append((method.upper(), path, query))
    return found


def _body(entry: dict[str, str]) -> bytes:
    return base64.b64decode(entry["b64"]) if "b64" in entry else entry["text"].encode()


def test_the_bad_input_corpus_gets_no_server_error_anywhere(demo):
    headers = {"X-API-Key": demo_api_key(demo)}
    operations = _operations(demo.url)
    failures: list[str] = []
    sent = 0
    # one connection per request: an answer sent before a body is read ends its connection,
    # which would be reported against the next request
    headers["Connection"] = "close"
    with httpx.Client(base_url=demo.url, headers=headers, timeout=30) as client:

        def send(why: str, method: str, path: str, **kwargs: object) -> None:
            nonlocal sent
            sent += 1
            try:
                response = client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                failures.append(f"{why}: {method} {path}: {exc!r}")
                return
            if response.status_code >= 500:
                failures.append(f"{why}: {method} {path}: {response.status_code} "
                                f"{response.text[:200]}")

        for method, path, query in operations:
            if method != "GET":
                for entry in CORPUS["bodies"]:
                    send(entry["why"], method, path, content=_body(entry),
                         headers={"content-type": "application/json"})
            for entry in CORPUS["queries"]:
                params = {k: v for k, v in entry["params"].items() if k in query} or entry["params"]
                send(entry["why"], method, path, params=params)
        for entry in CORPUS["paths"]:
            send(entry["why"], entry["method"], entry["path"])
    assert sent > 1000, "the corpus reaches every operation"
    assert not failures, "\n".join(failures[:30]) + f"\n({len(failures)} in all)"
