"""ServicesDispatch: `/services/{name}` ahead of the router, the router's answer unchanged."""

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Router

from servicegate.api.services import PLAIN, WITH_SUBPATH, ServicesDispatch, _fixed_names
from servicegate.web.routing import Route


async def _which(request: Request) -> Response:
    route = request.scope["route"].path
    return PlainTextResponse(f"{route} {sorted(request.path_params.items())}")


def _dispatch(*fixed: str, base: str = "") -> ServicesDispatch:
    routes = [Route(base + path, _which, methods=["GET"]) for path in fixed]
    routes += [Route(base + PLAIN, _which, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
               Route(base + WITH_SUBPATH, _which, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
    return ServicesDispatch(Router(routes), base)


async def _get(app: ServicesDispatch, path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.request(method, path)


async def test_definitions_get_the_route_and_params_the_router_would_give():
    app = _dispatch("/services/ping")
    r = await _get(app, "/services/crm")
    assert r.text == "/services/{name} [('name', 'crm')]"
    r = await _get(app, "/services/crm/a/b%20c")
    assert r.text == "/services/{name}/{subpath:path} [('name', 'crm'), ('subpath', 'a/b c')]"
    r = await _get(app, "/services/crm/")
    assert r.text == "/services/{name}/{subpath:path} [('name', 'crm'), ('subpath', '')]"


async def test_fixed_routes_listed_before_definitions_keep_precedence():
    app = _dispatch("/services/ping", "/services/extra", "/services/jobs/{id}")
    assert (await _get(app, "/services/ping")).text == "/services/ping []"
    assert (await _get(app, "/services/extra")).text == "/services/extra []"
    assert (await _get(app, "/services/jobs/7")).text == "/services/jobs/{id} [('id', '7')]"
    # a path under a fixed name that no fixed route answers falls back to the definitions
    assert (await _get(app, "/services/extra/x")).text.startswith("/services/{name}/")


async def test_other_methods_and_paths_go_through_the_router():
    app = _dispatch("/services/ping")
    r = await _get(app, "/services/crm", "OPTIONS")
    assert r.status_code == 405  # the router's answer, as before
    assert (await _get(app, "/services/")).status_code == 404
    assert (await _get(app, "/elsewhere")).status_code == 404


async def test_base_path():
    app = _dispatch("/services/ping", base="/gw")
    assert (await _get(app, "/gw/services/crm")).text == "/gw/services/{name} [('name', 'crm')]"
    assert (await _get(app, "/gw/services/ping")).text == "/gw/services/ping []"
    assert (await _get(app, "/services/crm")).status_code == 404


def test_a_parameter_first_segment_before_definitions_disables_the_shortcut():
    earlier = [Route("/services/{other}/x", _which)]
    assert _fixed_names(earlier, "/services/") is None
    names = _fixed_names([Route("/services/extra/{id}", _which)], "/services/")
    assert names is not None and {"extra", "ping", "identity", "jobs"} <= names


async def test_delegating_dispatch_answers_everything_through_the_router():
    routes = [Route("/services/{other}/x", _which, methods=["GET"]),
              Route(PLAIN, _which, methods=["GET"]), Route(WITH_SUBPATH, _which, methods=["GET"])]
    app = ServicesDispatch(Router(routes))
    assert (await _get(app, "/services/a/x")).text == "/services/{other}/x [('other', 'a')]"
    assert (await _get(app, "/services/a")).text == "/services/{name} [('name', 'a')]"


async def test_metrics_label_the_route_template(dgw):
    await dgw.define("hello.yaml", "name: hello\naction: {type: static, body: {}}\n")
    assert (await dgw.call("GET", "/services/hello")).status_code == 200
    assert (await dgw.call("GET", "/services/hello/a/b")).status_code == 200
    assert (await dgw.call("GET", "/services/identity")).status_code != 404
    text = (await dgw.client.get("/metrics")).text
    assert 'route="/services/{name}"' in text
    assert 'route="/services/{name}/{subpath:path}"' in text
    assert 'route="/services/identity"' in text
