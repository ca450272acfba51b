"""Persistence of rules, per-window counters, seen posts and alerts, so a restart loses nothing.

On SQLite (one process) or PostgreSQL (shared by replicas): see database.py. Evaluation is serialized
per tenant (counters are read-modify-write), and readers of alerts never see half of a batch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from civic.listening.v1 import alerting_pb2
from services.alerting.database import Database, Row, open_database
from services.alerting.rules import WindowCounts

SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    tenant TEXT NOT NULL, id TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS windows (
    tenant TEXT NOT NULL, rule_id TEXT NOT NULL, window_start INTEGER NOT NULL,
    count INTEGER NOT NULL, negative INTEGER NOT NULL, max_followers INTEGER NOT NULL,
    max_relevance REAL NOT NULL, samples TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, rule_id, window_start)
);
CREATE TABLE IF NOT EXISTS detectors (
    tenant TEXT NOT NULL, rule_id TEXT NOT NULL, next_start INTEGER NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (tenant, rule_id)
);
CREATE TABLE IF NOT EXISTS seen_posts (
    tenant TEXT NOT NULL, post_key TEXT NOT NULL, event_ts INTEGER NOT NULL, PRIMARY KEY (tenant, post_key)
);
CREATE INDEX IF NOT EXISTS seen_posts_by_time ON seen_posts (tenant, event_ts);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, rule_id TEXT NOT NULL, window_start INTEGER NOT NULL,
    state INTEGER NOT NULL, priority REAL NOT NULL, payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_priority ON alerts (tenant, priority DESC);
CREATE INDEX IF NOT EXISTS alerts_by_rule ON alerts (tenant, rule_id, window_start);
CREATE TABLE IF NOT EXISTS events (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_tenant ON events (tenant, sequence);
CREATE TABLE IF NOT EXISTS es_queue (
    alert_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, payload BLOB NOT NULL
);
"""
# SQLite's default limit on host parameters is 999 in old builds.
IN_CHUNK = 500


class AlertStore:
    def __init__(self, path: Path, database_url: str = "") -> None:
        self.path = path
        self.db: Database = open_database(database_url, path)
        # Woken on every event this process records, so that its watchers do not poll; events of other
        # replicas are seen by the watchers' short poll.
        self.changed = threading.Condition()
        self.db.script(SCHEMA)
        self.add_columns("windows", {"extra": "TEXT NOT NULL DEFAULT '{}'"})  # from before authors and terms

    @property
    def shared(self) -> bool:
        return self.db.shared

    def close(self) -> None:
        self.db.close()

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """One statement for the modules that own further tables (silences, webhooks, deliveries)."""
        return self.db.execute(sql, params)

    def add_schema(self, script: str) -> None:
        self.db.script(script)

    def add_columns(self, table: str, columns: dict[str, str]) -> None:
        """Columns added since a table was first created (a state kept from an earlier release)."""
        present = self.db.columns(table)
        for name, declaration in columns.items():
            if name not in present:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    def transaction(self) -> Any:
        """All writes of one evaluated batch become visible together, or not at all."""
        return self.db.transaction()

    def lock_tenants(self, tenants: Iterable[str]) -> None:
        self.db.lock_tenants(tenants)

    def leader(self, name: str) -> Any:
        return self.db.leader(name)

    # --- rules ---------------------------------------------------------------------------------

    def rules(self, tenant: str | None = None) -> list[alerting_pb2.Rule]:
        """All tenants' rules, or one tenant's."""
        if tenant is None:
            rows = self.db.execute("SELECT payload FROM rules ORDER BY tenant, id")
        else:
            rows = self.db.execute("SELECT payload FROM rules WHERE tenant = ? ORDER BY id", (tenant,))
        return [alerting_pb2.Rule.FromString(bytes(payload)) for (payload,) in rows]

    def put_rule(self, rule: alerting_pb2.Rule) -> None:
        self.db.execute(
            "INSERT INTO rules (tenant, id, payload) VALUES (?, ?, ?) "
            "ON CONFLICT (tenant, id) DO UPDATE SET payload = excluded.payload",
            (rule.tenant, rule.id, rule.SerializeToString()),
        )

    def drop_windows(self, tenant: str, rule_id: str) -> None:
        self.db.execute("DELETE FROM windows WHERE tenant = ? AND rule_id = ?", (tenant, rule_id))
        self.db.execute("DELETE FROM detectors WHERE tenant = ? AND rule_id = ?", (tenant, rule_id))

    def delete_rule(self, tenant: str, rule_id: str) -> None:
        self.db.execute("DELETE FROM rules WHERE tenant = ? AND id = ?", (tenant, rule_id))
        self.drop_windows(tenant, rule_id)

    # --- anomaly detectors ---------------------------------------------------------------------

    def detector(self, tenant: str, rule_id: str) -> tuple[int, bytes] | None:
        """The next window start the rule's detector has to learn, and its pickled state."""
        rows = self.db.execute(
            "SELECT next_start, payload FROM detectors WHERE tenant = ? AND rule_id = ?", (tenant, rule_id)
        )
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def put_detector(self, tenant: str, rule_id: str, next_start: int, payload: bytes) -> None:
        self.db.execute(
            "INSERT INTO detectors (tenant, rule_id, next_start, payload) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, rule_id) DO UPDATE SET next_start = excluded.next_start, payload = excluded.payload",
            (tenant, rule_id, next_start, payload),
        )

    def earliest_window(self, tenant: str, rule_id: str) -> int | None:
        return self._scalar("SELECT MIN(window_start) FROM windows WHERE tenant = ? AND rule_id = ?", (tenant, rule_id))

    # --- seen posts ----------------------------------------------------------------------------

    def seen(self, tenant: str, keys: list[str]) -> set[str]:
        """Which of these posts were already evaluated (deliveries are at-least-once)."""
        found: set[str] = set()
        for i in range(0, len(keys), IN_CHUNK):
            chunk = keys[i : i + IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT post_key FROM seen_posts WHERE tenant = ? AND post_key IN ({marks})", (tenant, *chunk)
            )
            found.update(str(key) for (key,) in rows)
        return found

    def mark_seen(self, tenant: str, posts: Iterable[tuple[str, int]]) -> None:
        self.db.executemany(
            "INSERT INTO seen_posts (tenant, post_key, event_ts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            ((tenant, key, ts) for key, ts in posts),
        )

    def latest_seen(self, tenant: str) -> int:
        return self._scalar("SELECT MAX(event_ts) FROM seen_posts WHERE tenant = ?", (tenant,)) or 0

    def prune_seen(self, tenant: str, before_ts: int) -> None:
        self.db.execute("DELETE FROM seen_posts WHERE tenant = ? AND event_ts < ?", (tenant, before_ts))

    # --- windows -------------------------------------------------------------------------------

    def window(self, tenant: str, rule_id: str, start: int) -> WindowCounts | None:
        return self.windows(tenant, rule_id, start, start + 1).get(start)

    def windows(self, tenant: str, rule_id: str, from_start: int, to_start: int) -> dict[int, WindowCounts]:
        """The rule's windows starting in [from_start, to_start), with all their counters."""
        rows = self.db.execute(
            "SELECT window_start, count, negative, max_followers, max_relevance, samples, extra FROM windows "
            "WHERE tenant = ? AND rule_id = ? AND window_start >= ? AND window_start < ?",
            (tenant, rule_id, from_start, to_start),
        )
        return {int(row[0]): _counts(*row[1:]) for row in rows}

    def put_window(self, tenant: str, rule_id: str, start: int, counts: WindowCounts) -> None:
        extra = {
            "max_engagement": counts.max_engagement, "authors": sorted(counts.authors), "terms": counts.terms,
            "top_post": counts.top_post, "toned": counts.toned, "angry": counts.angry, "abusive": counts.abusive,
            "abuse_topics": counts.abuse_topics, "abuse_samples": counts.abuse_samples,
        }
        self.db.execute(
            "INSERT INTO windows (tenant, rule_id, window_start, count, negative, max_followers, "
            "max_relevance, samples, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, rule_id, window_start) DO UPDATE SET count = excluded.count, "
            "negative = excluded.negative, max_followers = excluded.max_followers, "
            "max_relevance = excluded.max_relevance, samples = excluded.samples, extra = excluded.extra",
            (
                tenant, rule_id, start, counts.count, counts.negative, counts.max_followers,
                counts.max_relevance, json.dumps(counts.samples), json.dumps(extra),
            ),
        )

    def window_counts(self, tenant: str, rule_id: str, from_start: int, to_start: int) -> dict[int, int]:
        """Post counts of the rule's windows starting in [from_start, to_start)."""
        rows = self.db.execute(
            "SELECT window_start, count FROM windows WHERE tenant = ? AND rule_id = ? "
            "AND window_start >= ? AND window_start < ?",
            (tenant, rule_id, from_start, to_start),
        )
        return {int(start): int(count) for start, count in rows}

    def latest_window(self, tenant: str, rule_id: str) -> int | None:
        return self._scalar("SELECT MAX(window_start) FROM windows WHERE tenant = ? AND rule_id = ?", (tenant, rule_id))

    def prune_windows(self, tenant: str, rule_id: str, before_start: int) -> None:
        self.db.execute(
            "DELETE FROM windows WHERE tenant = ? AND rule_id = ? AND window_start < ?", (tenant, rule_id, before_start)
        )

    # --- alerts --------------------------------------------------------------------------------

    def alert(self, alert_id: str) -> alerting_pb2.Alert | None:
        rows = self.db.execute("SELECT payload FROM alerts WHERE id = ?", (alert_id,))
        return alerting_pb2.Alert.FromString(bytes(rows[0][0])) if rows else None

    def put_alert(self, alert: alerting_pb2.Alert) -> None:
        payload = alert.SerializeToString()
        self.db.execute(
            "INSERT INTO alerts (id, tenant, rule_id, window_start, state, priority, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "priority = excluded.priority, payload = excluded.payload",
            (alert.id, alert.tenant, alert.rule_id, alert.window_start.seconds, alert.state, alert.priority, payload),
        )
        # The copy in Elasticsearch follows from this queue, in the same transaction: never lost.
        self.db.execute(
            "INSERT INTO es_queue (alert_id, tenant, payload) VALUES (?, ?, ?) "
            "ON CONFLICT (alert_id) DO UPDATE SET payload = excluded.payload",
            (alert.id, alert.tenant, payload),
        )

    def firing_alerts(self, tenant: str, rule_id: str, before_start: int) -> list[alerting_pb2.Alert]:
        rows = self.db.execute(
            "SELECT payload FROM alerts WHERE tenant = ? AND rule_id = ? AND state = ? AND window_start < ?",
            (tenant, rule_id, alerting_pb2.ALERT_STATE_FIRING, before_start),
        )
        return [alerting_pb2.Alert.FromString(bytes(payload)) for (payload,) in rows]

    def alert_windows(self, tenant: str, rule_id: str, after_start: int, before_start: int) -> int:
        """Number of the rule's windows strictly between the two starts that raised an alert."""
        return self._scalar(
            "SELECT COUNT(*) FROM alerts WHERE tenant = ? AND rule_id = ? AND window_start > ? AND window_start < ?",
            (tenant, rule_id, after_start, before_start),
        ) or 0

    def list_alerts(self, tenant: str, limit: int, state: int = 0) -> list[alerting_pb2.Alert]:
        """Highest priority first; `state` 0 means any state."""
        rows = self.db.execute(
            "SELECT payload FROM alerts WHERE tenant = ? AND (? = 0 OR state = ?) "
            "ORDER BY priority DESC, window_start DESC, id LIMIT ?",
            (tenant, state, state, limit),
        )
        return [alerting_pb2.Alert.FromString(bytes(payload)) for (payload,) in rows]

    # --- events --------------------------------------------------------------------------------

    def add_event(self, kind: int, alert: alerting_pb2.Alert, at_s: float) -> int:
        """Records one change of an alert; its sequence (never reused) is the watchers' cursor."""
        event = alerting_pb2.AlertEvent(kind=kind, alert=alert)  # type: ignore[arg-type]
        event.at.FromNanoseconds(int(at_s * 1e9))
        ((sequence,),) = self.db.execute(
            "INSERT INTO events (tenant, payload) VALUES (?, ?) RETURNING sequence",
            (alert.tenant, event.SerializeToString()),
        )
        with self.changed:
            self.changed.notify_all()
        return int(sequence)

    def events(self, tenant: str, after: int, limit: int) -> list[alerting_pb2.AlertEvent]:
        rows = self.db.execute(
            "SELECT sequence, payload FROM events WHERE tenant = ? AND sequence > ? ORDER BY sequence LIMIT ?",
            (tenant, after, limit),
        )
        events = []
        for sequence, payload in rows:
            event = alerting_pb2.AlertEvent.FromString(bytes(payload))
            event.sequence = int(sequence)
            events.append(event)
        return events

    def _scalar(self, sql: str, params: Sequence[object]) -> int | None:
        ((value,),) = self.db.execute(sql, params)
        return None if value is None else int(value)


def _counts(
    count: int, negative: int, max_followers: int, max_relevance: float, samples: str, extra: str
) -> WindowCounts:
    more = json.loads(extra)
    return WindowCounts(
        count, negative, max_followers, max_relevance, json.loads(samples),
        max_engagement=int(more.get("max_engagement", 0)), authors=set(more.get("authors", [])),
        terms=dict(more.get("terms", {})), top_post=str(more.get("top_post", "")),
        toned=int(more.get("toned", 0)), angry=int(more.get("angry", 0)), abusive=int(more.get("abusive", 0)),
        abuse_topics=dict(more.get("abuse_topics", {})), abuse_samples=list(more.get("abuse_samples", [])),
    )
