"""The webhook receiver: `POST /webhooks/<source id>` over plain HTTP, in the ingestion process.

The answer comes only after the posts are durably spooled, so a 200 means what an IngestPosts reply
means. Status codes tell the sender what to do: 401 bad signature (fix the secret), 400 bad body,
404 unknown source, 429 with Retry-After when the spool is full or the source paused (retry).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict

from services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from services.ingestion.connectors.webhook import SIGNATURE_HEADER, BadSignature
from services.ingestion.scheduler import Scheduler, SourcePaused
from services.ingestion.spool import SPOOL_FULL_RETRY_S

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"
MAX_BODY_BYTES = 8 * 1024 * 1024
RETRY_AFTER_S = f"{SPOOL_FULL_RETRY_S:.0f}"


class WebhookServer:
    def __init__(self, scheduler: Scheduler, host: str, port: int) -> None:
        self.scheduler = scheduler
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])

    def start(self) -> WebhookServer:
        threading.Thread(target=self.httpd.serve_forever, name="webhooks", daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, path: str, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        if not path.startswith(PREFIX) or "/" in path[len(PREFIX):] or len(path) == len(PREFIX):
            return 404, {"error": "POST /webhooks/<source id>"}
        try:
            reply = self.scheduler.receive_push(path[len(PREFIX):], body, signature)
        except BadSignature as exc:
            return 401, {"error": str(exc)}
        except NotFound as exc:
            return 404, {"error": str(exc)}
        except InvalidArgument as exc:
            return 400, {"error": str(exc)}
        except (ResourceExhausted, SourcePaused) as exc:
            return 429, {"error": str(exc)}
        return 200, MessageToDict(reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                    return
                body = self.rfile.read(length)
                self._answer(*server.handle(self.path, body, self.headers.get(SIGNATURE_HEADER)))

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", RETRY_AFTER_S)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("webhook %s", format % args)

        return _Handler
