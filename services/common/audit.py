"""The audit log: who did what, when, and how it ended, as documents in one Elasticsearch index.

Records are queued by the security interceptor and written in bulk by a background thread, so an
RPC never waits for Elasticsearch. A record names the caller (key id or JWT subject, tenant, roles),
the method, its outcome and what it was about (the query of a search, the id of a rule, silence,
alert or source); it never holds a token, a secret or the text of a post.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers
from google.protobuf.message import Message

from services.common.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500
KEYWORD = {"type": "keyword"}
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "@timestamp": {"type": "date"}, "service": KEYWORD, "method": KEYWORD, "outcome": KEYWORD,
        "subject": KEYWORD, "credential": KEYWORD, "tenant": KEYWORD, "tenants": KEYWORD, "roles": KEYWORD,
        "peer": KEYWORD, "duration_ms": {"type": "float"}, "details": {"type": "flattened"},
    },
}
# Request fields worth recording, by name; anything else (post text, secrets, URLs) is left out.
_SCALARS = ("query", "id", "alert_id", "channel", "assignee", "by", "name", "kind", "state", "dimension",
            "interval", "after_sequence", "include_expired", "page_size", "limit", "is_query")
_NESTED = ("rule", "silence", "webhook", "spec")


def describe(request: Message) -> dict[str, str]:
    """What a request was about, from the fields listed above (and item counts of batches)."""
    details: dict[str, str] = {}
    _collect(request, "", details)
    fields = request.DESCRIPTOR.fields_by_name
    for name in _NESTED:
        if name in fields and request.HasField(name):
            nested = getattr(request, name)
            _collect(nested, f"{name}.", details)
            if name == "silence" and nested.matchers:
                details["silence.matchers"] = ", ".join(
                    f"{m.name}{_OPERATORS.get(m.operator, '=')}{m.value}" for m in nested.matchers
                )
    for name in ("posts", "texts"):
        if name in fields:
            details[f"{name}.count"] = str(len(getattr(request, name)))
    if request.DESCRIPTOR.name == "SemanticSearchRequest":
        details["semantic_query"] = str(getattr(request, "text", ""))  # the text of a semantic search is its query
    return details


_OPERATORS = {0: "=", 1: "=", 2: "!=", 3: "=~", 4: "!~"}


def _collect(message: Message, prefix: str, into: dict[str, str]) -> None:
    for field, value in message.ListFields():
        if field.name in _SCALARS and not field.is_repeated and field.type != field.TYPE_MESSAGE:
            into[prefix + field.name] = str(value)


class AuditLog:
    """A bounded queue of records and the thread that bulk-writes them to the audit index."""

    def __init__(self, settings: Settings, es: Elasticsearch) -> None:
        self.index = settings.audit_index
        self._es = es
        self._flush_s = settings.audit_flush_s
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=settings.audit_max_queue)
        self._stop = threading.Event()
        self._index_ready = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, **fields: Any) -> None:
        """Queues one record; never blocks (a full queue drops the record and counts it)."""
        fields.setdefault("@timestamp", datetime.now(UTC).isoformat())
        try:
            self._queue.put_nowait(fields)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Writes what is queued (bounded by one flush period) and stops the writer."""
        self._stop.set()
        self._thread.join(timeout=self._flush_s + 10)
        self._es.close()

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        while True:
            stopping = self._stop.is_set()
            try:
                pending.append(self._queue.get(timeout=self._flush_s))
                while len(pending) < BATCH:
                    pending.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if pending and (self._write(pending) or stopping):
                pending = []
            if stopping and self._queue.empty():
                return

    def _write(self, records: list[dict[str, Any]]) -> bool:
        """True when the records are written (or refused for good); False to try them again later."""
        try:
            if not self._index_ready:
                if not self._es.indices.exists(index=self.index):
                    self._es.indices.create(index=self.index, mappings=MAPPINGS)
                self._index_ready = True
            _written, errors = helpers.bulk(
                self._es, ({"_index": self.index, "_source": r} for r in records), raise_on_error=False,
            )
            if isinstance(errors, list) and errors:
                log.warning("audit: %d records refused: %s", len(errors), errors[:1])
            return True
        except (TransportError, ApiError) as exc:
            log.warning("audit: elasticsearch unavailable, %d records kept: %s", len(records), exc)
            excess = len(records) - 10 * BATCH
            if excess > 0:  # keep the newest records while the cluster is away
                del records[:excess]
                self.dropped += excess
            return False
