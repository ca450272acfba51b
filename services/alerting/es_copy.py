"""The searchable copy of alerts in Elasticsearch: one index per tenant, `<prefix>-<tenant>`.

The alerting store stays the source of truth. Every stored version of an alert is queued in the
`es_queue` table in the same transaction as the alert itself; this module drains the queue with bulk
requests, on one replica at a time (an older version written by one replica after a newer one by
another would otherwise win). While
Elasticsearch is unreachable the queue simply grows, and it is written when the cluster returns, so no
alert is lost and the latest version wins. The prefix is outside the `civic-posts-*` template.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from civic.listening.v1 import alerting_pb2
from services.alerting.store import AlertStore
from services.common import enum_names

log = logging.getLogger(__name__)

BATCH = 500
# Bounds one drain, so that documents refused with a retryable status wait for the next one.
MAX_BATCHES_PER_DRAIN = 20
KEYWORD = {"type": "keyword"}
DATE = {"type": "date"}
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": KEYWORD, "tenant": KEYWORD, "rule_id": KEYWORD,
        "rule_name": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
        "severity": KEYWORD, "state": KEYWORD, "summary": {"type": "text"},
        "window_start": DATE, "fired_at": DATE, "resolved_at": DATE, "acknowledged_at": DATE,
        "assigned_at": DATE, "escalated_at": DATE,
        "post_count": {"type": "long"}, "sample_post_ids": KEYWORD, "priority": {"type": "float"},
        "priority_factors": {
            "properties": {"name": KEYWORD, "value": {"type": "float"}, "weight": {"type": "float"},
                           "reason": {"type": "text"}}
        },
        "labels": {"type": "flattened"},
        "resolved_by": KEYWORD, "acknowledged_by": KEYWORD, "assignee": KEYWORD, "assigned_by": KEYWORD,
        "term": KEYWORD,
    },
}
INDEX_SETTINGS = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}


def index_name(prefix: str, tenant: str) -> str:
    return f"{prefix}-{tenant}"


def _time(alert: alerting_pb2.Alert, field: str) -> str | None:
    if not alert.HasField(field):
        return None
    return str(getattr(alert, field).ToDatetime(tzinfo=UTC).isoformat())


def document(alert: alerting_pb2.Alert) -> dict[str, Any]:
    """The alert as searchers see it: words for enums, dates as ISO-8601, unset times left out."""
    doc: dict[str, Any] = {
        "id": alert.id, "tenant": alert.tenant, "rule_id": alert.rule_id, "rule_name": alert.rule_name,
        "severity": enum_names.word(alerting_pb2.Severity, alert.severity),
        "state": enum_names.word(alerting_pb2.AlertState, alert.state),
        "summary": alert.summary, "post_count": alert.post_count, "sample_post_ids": list(alert.sample_post_ids),
        "priority": alert.priority,
        "priority_factors": [{"name": f.name, "value": f.value, "weight": f.weight, "reason": f.reason}
                             for f in alert.priority_factors],
        "labels": dict(alert.labels), "resolved_by": alert.resolved_by, "acknowledged_by": alert.acknowledged_by,
        "assignee": alert.assignee, "assigned_by": alert.assigned_by, "term": alert.term,
    }
    for field in ("window_start", "fired_at", "resolved_at", "acknowledged_at", "assigned_at", "escalated_at"):
        value = _time(alert, field)
        if value is not None:
            doc[field] = value
    return doc


class AlertIndex:
    """Drains the queue into Elasticsearch; `drain` returns False while the cluster is unreachable."""

    def __init__(self, store: AlertStore, es: Elasticsearch, prefix: str, refresh: bool = False) -> None:
        self.store, self.es, self.prefix, self.refresh = store, es, prefix, refresh
        self._created: set[str] = set()

    def queued(self) -> int:
        ((count,),) = self.store.execute("SELECT COUNT(*) FROM es_queue")
        return int(count)

    def drain(self) -> bool:
        with self.store.leader("es-copy") as leading:
            return self._drain() if leading else True

    def _drain(self) -> bool:
        try:
            for _ in range(MAX_BATCHES_PER_DRAIN):
                rows = self.store.execute("SELECT alert_id, tenant, payload FROM es_queue LIMIT ?", (BATCH,))
                if not rows:
                    break
                self._write([(str(a), str(t), bytes(p)) for a, t, p in rows])
            return True
        except (TransportError, ApiError) as exc:
            log.warning("alerts index: elasticsearch unavailable, %d alerts queued: %s", self.queued(), exc)
            return False

    def _write(self, rows: list[tuple[str, str, bytes]]) -> None:
        for tenant in {tenant for _, tenant, _ in rows}:
            self._ensure_index(index_name(self.prefix, tenant))
        operations: list[dict[str, Any]] = []
        for _, _, payload in rows:
            alert = alerting_pb2.Alert.FromString(payload)
            operations.append({"index": {"_index": index_name(self.prefix, alert.tenant), "_id": alert.id}})
            operations.append(document(alert))
        reply = self.es.bulk(operations=operations, refresh=self.refresh)
        for (alert_id, _, payload), item in zip(rows, reply["items"], strict=True):
            status = int(item["index"]["status"])
            if status >= 500 or status == 429:
                continue  # stays queued for the next round
            if status >= 300:  # a document the mapping refuses would block the queue forever
                log.error("alerts index refused alert %s: %s", alert_id, item["index"].get("error"))
            # Only the version just written: a newer one queued meanwhile stays for the next round.
            self.store.execute("DELETE FROM es_queue WHERE alert_id = ? AND payload = ?", (alert_id, payload))

    def _ensure_index(self, name: str) -> None:
        if name in self._created:
            return
        if self.es.indices.exists(index=name):
            # An index made by an older release lacks the newer fields, which its strict mapping refuses.
            self.es.indices.put_mapping(index=name, properties=MAPPINGS["properties"])
        else:
            try:
                self.es.indices.create(index=name, mappings=MAPPINGS, settings=INDEX_SETTINGS)
            except ApiError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
        self._created.add(name)
