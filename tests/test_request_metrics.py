"""Request metrics: labelled by route template, method and status, every label from a closed
set whatever a client sends."""

import random
import string

from prometheus_client import REGISTRY


def _series(name: str) -> int:
    return sum(1 for metric in REGISTRY.collect() for sample in metric.samples
               if sample.name == name)


async def test_metrics_label_the_route_template(dgw):
    await dgw.define("hello.yaml", "name: hello\naction: {type: static, body: {}}\n")
    assert (await dgw.call("GET", "/services/hello")).status_code == 200
    assert (await dgw.call("GET", "/services/hello/a/b")).status_code == 200
    assert (await dgw.call("GET", "/services/identity")).status_code != 404
    text = (await dgw.client.get("/metrics")).text
    assert 'route="/services/{name:definition}"' in text
    assert 'route="/services/{name:definition}/{subpath:path}"' in text
    assert 'route="/services/identity"' in text
    assert ('servicegate_definition_requests_total{definition="hello",status="200",'
            'via="services"}') in text


async def test_invented_methods_and_paths_add_no_series(dgw):
    """Unauthenticated requests with made-up methods and paths are counted under `other`
    and `<unmatched>`: the number of series stays bounded."""
    rng = random.Random(7)

    def token(n: int) -> str:
        return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))

    for _ in range(50):  # every (route, method class, status) these can produce, once
        await dgw.client.request(token(8), f"/{token(12)}")
        await dgw.client.request(token(8), "/services/ping")
    before = _series("servicegate_http_requests_total")
    for _ in range(1000):
        await dgw.client.request(token(rng.randint(1, 40)), f"/{token(rng.randint(1, 60))}")
        await dgw.client.request(token(rng.randint(1, 40)), "/services/ping")
    assert _series("servicegate_http_requests_total") == before
    text = (await dgw.client.get("/metrics")).text
    assert 'method="other",route="<unmatched>"' in text
