"""Malformed and stalled request bodies against a real `servicegate serve` (granian), over raw
sockets: each is answered with a 4xx problem and the connection closed, never a 5xx; invented
methods and paths add no metric series."""

import json
import random
import socket
import string
import time

import httpx
import pytest

from tests.support.processes import GatewayProcess, free_port, gateway_env

pytestmark = pytest.mark.e2e
BODY_TIMEOUT = 1.0


@pytest.fixture
def gw(tmp_path, sqlite_url):
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    (definitions / "hello.yaml").write_text(
        "name: hello\nmethods: [POST]\naction: {type: static, body: {received: '{{ body }}'}}\n")
    proc = GatewayProcess(tmp_path, gateway_env(
        tmp_path, sqlite_url, SERVICEGATE_LIMITS__BODY_READ_TIMEOUT=f"{BODY_TIMEOUT:g}s"),
        free_port())
    proc.key = proc.create_client("caller", "services")["api_key"]
    proc.start()
    yield proc
    proc.stop()


def exchange(port: int, head: str, body: bytes, deadline: float = 15.0) -> tuple[bytes, float]:
    """Send a request as given; read until the server closes the connection (within
    `deadline`). Returns what came back and how long the server took to close."""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as sock:
        started = time.monotonic()
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while time.monotonic() - started < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return answer, time.monotonic() - started
            answer += chunk
    raise AssertionError(f"the connection stayed open for {deadline}s; got {answer[:300]!r}")


def problem_of(answer: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/problem+json", answer
    return int(lines[0].split()[1]), headers, json.loads(body)


TARGETS = [("/services/hello", "application/json"),
           ("/oauth2/token", "application/x-www-form-urlencoded")]


@pytest.mark.parametrize(("target", "media_type"), TARGETS)
def test_malformed_chunked_body_is_400(gw, target, media_type):
    head = (f"POST {target} HTTP/1.1\nHost: gw\nX-API-Key: {gw.key}\n"
            f"Content-Type: {media_type}\nTransfer-Encoding: chunked\n")
    answer, _ = exchange(gw.port, head, b"zz\r\n{}\r\n0\r\n\r\n")
    status, headers, problem = problem_of(answer)
    assert status == 400, answer
    assert "chunked encoding is malformed" in problem["detail"]
    assert headers["connection"] == "close"


@pytest.mark.parametrize(("target", "media_type"), TARGETS)
def test_body_shorter_than_its_length_is_408_after_the_timeout(gw, target, media_type):
    head = (f"POST {target} HTTP/1.1\nHost: gw\nX-API-Key: {gw.key}\n"
            f"Content-Type: {media_type}\nContent-Length: 100\n")
    answer, took = exchange(gw.port, head, b"{}")
    status, headers, problem = problem_of(answer)
    assert status == 408, answer
    assert problem["detail"] == f"the request body did not arrive within {BODY_TIMEOUT:g}s"
    assert headers["connection"] == "close"
    assert BODY_TIMEOUT - 0.1 <= took < BODY_TIMEOUT + 5


def test_a_complete_body_is_not_held_up(gw):
    head = (f"POST /services/hello HTTP/1.1\nHost: gw\nX-API-Key: {gw.key}\n"
            "Content-Type: application/json\nContent-Length: 8\nConnection: close\n")
    answer, took = exchange(gw.port, head, b'{"a": 1}')
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert took < BODY_TIMEOUT


def test_invented_methods_and_paths_keep_the_metrics_bounded(gw):
    """1,000 unauthenticated requests with made-up methods and paths against the real server
    add no `servicegate_http_requests_total` series after the first few."""
    rng = random.Random(16)

    def token(n: int) -> str:
        return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))

    def series(client: httpx.Client) -> int:
        text = client.get("/metrics").text
        return sum(1 for line in text.splitlines()
                   if line.startswith("servicegate_http_requests_total{"))

    with httpx.Client(base_url=gw.url, timeout=10) as client:
        for _ in range(20):  # every (route, method class, status) these can produce, once
            client.request(token(8), f"/{token(12)}")
            client.request(token(8), "/services/ping")
            client.request(token(8), f"/services/{token(8)}/{token(8)}")
            client.request(token(8), f"/callback/{token(6)}")
        series(client)  # counts itself from the next scrape on
        before = series(client)
        for i in range(1000):
            path = rng.choice([f"/{token(rng.randint(1, 60))}", "/services/ping",
                               f"/services/{token(10)}/{token(10)}", f"/callback/{token(6)}"])
            assert client.request(token(rng.randint(1, 40)), path).status_code < 500
        assert series(client) == before
        assert 'method="other",route="<unmatched>"' in client.get("/metrics").text
