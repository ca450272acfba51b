"""The soak's webhook receiver: counts every notification request by its Idempotency-Key and the
alerts it carries, so that the bench can tell a notification sent twice (the same key again) from
two notifications."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "soak-webhook-secret-0123456789"


class Notifications:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: Counter[str] = Counter()
        self.firing: set[str] = set()
        self.url = ""

    def record(self, key: str, body: dict[str, Any]) -> None:
        firing = {str(alert["id"]) for alert in body.get("alerts", []) if alert.get("state") == "ALERT_STATE_FIRING"}
        with self.lock:
            self.keys[key] += 1
            self.firing |= firing

    def figures(self) -> tuple[int, int, int, int]:
        """Requests, distinct keys, keys received more than once, distinct firing alerts notified."""
        with self.lock:
            repeated = sum(1 for copies in self.keys.values() if copies > 1)
            return sum(self.keys.values()), len(self.keys), repeated, len(self.firing)


@contextmanager
def receiving() -> Iterator[Notifications]:
    state = Notifications()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.record(self.headers.get("Idempotency-Key", ""), body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
