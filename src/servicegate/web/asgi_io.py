"""A request body read and a response sent straight on the ASGI callables.

What Starlette's `Request.body()` and `Response.__call__` do for an HTTP request, without the
objects around them: the `/services/{name}` path (api/services.py) uses these.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Send


async def receive_body(receive: Receive) -> bytes:
    """Every `http.request` chunk joined (`Request.body()`); ClientDisconnect on a disconnect."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                chunks.append(body)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def send_response(send: Send, response: Response, trailer: tuple[tuple[bytes, bytes], ...],
                        status_holder: list[int]) -> int:
    """`await response(scope, receive, send)` with `trailer` appended to its headers (a new
    list: cached responses are shared); `status_holder[0]` is the status once it is sent."""
    status = response.status_code
    headers = [*response.raw_headers, *trailer] if trailer else response.raw_headers
    status_holder[0] = status
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
    if response.background is not None:
        await response.background()
    return status
