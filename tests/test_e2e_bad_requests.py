"""Malformed and stalled request bodies against a real `servicegate serve` (granian), over raw
sockets: each is answered with a 4xx problem and the connection closed, never a 5xx."""

import json
import socket
import time

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
