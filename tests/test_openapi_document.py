"""/openapi.json, as a running gateway with the example definitions serves it, is a valid
OpenAPI 3.1 document: every operation has a unique operationId, every response a schema, and
public operations need no credentials."""

from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import validate

from tests.support.demo import start_demo_gateway

pytestmark = pytest.mark.e2e

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document(tmp_path_factory):
    gateway = start_demo_gateway(tmp_path_factory.mktemp("openapi"))
    try:
        yield httpx.get(f"{gateway.url}/openapi.json", timeout=30).json()
    finally:
        gateway.stop()


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def test_the_served_document_is_valid_openapi(document):
    validate(document)  # raises on the first error


def test_every_operation_has_a_unique_operation_id(document):
    ids = [operation.get("operationId") for _, _, operation in _operations(document)]
    assert None not in ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_response_has_a_schema(document):
    missing = []
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if "$ref" in response:
                name = response["$ref"].rsplit("/", 1)[-1]
                response = document["components"]["responses"][name]
            content = response.get("content", {})
            if status != "204" and (not content or any("schema" not in c
                                                       for c in content.values())):
                missing.append(f"{method.upper()} {path} {status}")
    assert not missing, missing


def test_public_operations_need_no_credentials_and_every_name_is_declared(document):
    public = {("get", "/healthz"), ("get", "/readyz"), ("post", "/oauth2/token"),
              ("get", "/.well-known/jwks.json"), ("get", "/metrics"), ("get", "/openapi.json"),
              ("get", "/docs")}
    tags = {t["name"] for t in document["tags"]}
    schemes: set[str] = set()
    for method, path, operation in _operations(document):
        assert "security" in operation, (method, path)
        if (method, path) in public:
            assert operation["security"] == [], (method, path)
        schemes.update(name for requirement in operation["security"] for name in requirement)
        assert set(operation["tags"]) <= tags, (method, path, operation["tags"])
    assert schemes == set(document["components"]["securitySchemes"])
    # the reference document's tags come first, as it has them
    assert [t["name"] for t in document["tags"]][:3] == ["Callback", "Services", "Webhooks"]
