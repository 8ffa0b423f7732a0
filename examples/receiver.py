"""A webhook receiver to try deliveries on this machine: prints each one, verified.

    python3 examples/receiver.py [PORT]                       (default 9000; no checks)
    WEBHOOK_SECRET=s3cret-value python3 examples/receiver.py   (verifies every signature)

Answers 204 to a delivery whose Standard Webhooks signature verifies (or to any, without a
secret) and 401 to one that does not; `FAIL=500` makes it answer 500 instead, to watch the
gateway retry. A secret written `whsec_<base64>` is read as Standard Webhooks libraries read
it; any other string is its own key (UTF-8 bytes), as the gateway signs with it.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from standardwebhooks import Webhook, WebhookVerificationError
except ImportError:  # verification needs the gateway's virtualenv (or `pip install standardwebhooks`)
    Webhook = None  # type: ignore[assignment,misc]


def verifier() -> object | None:
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        return None
    if Webhook is None:
        sys.exit("WEBHOOK_SECRET is set but the standardwebhooks package is missing")
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


class Receiver(BaseHTTPRequestHandler):
    check = verifier()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        verified = "not checked"
        if self.check is not None:
            try:
                self.check.verify(body, dict(self.headers))  # type: ignore[attr-defined]
                verified = "signature ok"
            except (WebhookVerificationError, ValueError) as exc:  # ValueError: not base64
                print(f"refused {self.headers.get('webhook-id')}: {exc}", flush=True)
                self.send_response(401)
                self.end_headers()
                return
        payload = json.loads(body or b"{}")
        print(f"{payload.get('event')} {payload.get('id')} ({verified}): "
              f"{json.dumps(payload.get('data'))}", flush=True)
        self.send_response(int(os.environ.get("FAIL", "204")))
        self.end_headers()

    do_PUT = do_PATCH = do_POST  # a webhook may be registered with these methods

    def log_message(self, format: str, *args: object) -> None:
        return  # one line per delivery is printed above


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    print(f"receiving webhooks on http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
