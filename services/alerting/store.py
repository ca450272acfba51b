"""SQLite persistence of rules, per-window counters, seen posts and alerts, so a restart loses nothing.

One connection in WAL mode behind a lock: evaluation is serialized anyway (counters are read-modify-
write), and readers of alerts must not see half of a batch.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from civic.listening.v1 import alerting_pb2
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
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        # Woken on every recorded event, so that watchers do not poll.
        self.changed = threading.Condition()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.last_sequence = 0
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(windows)")}
        if "extra" not in columns:  # a state file from before authors and terms were kept
            self._db.execute("ALTER TABLE windows ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """One statement for the modules that own further tables (silences, webhooks, deliveries)."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def add_schema(self, script: str) -> None:
        with self._lock:
            self._db.executescript(script)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes of one evaluated batch become visible together, or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- rules ---------------------------------------------------------------------------------

    def rules(self) -> list[alerting_pb2.Rule]:
        with self._lock:
            rows = self._db.execute("SELECT payload FROM rules ORDER BY tenant, id").fetchall()
        return [alerting_pb2.Rule.FromString(payload) for (payload,) in rows]

    def put_rule(self, rule: alerting_pb2.Rule) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO rules (tenant, id, payload) VALUES (?, ?, ?)",
                (rule.tenant, rule.id, rule.SerializeToString()),
            )

    def drop_windows(self, tenant: str, rule_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM windows WHERE tenant = ? AND rule_id = ?", (tenant, rule_id))
            self._db.execute("DELETE FROM detectors WHERE tenant = ? AND rule_id = ?", (tenant, rule_id))

    def delete_rule(self, tenant: str, rule_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM rules WHERE tenant = ? AND id = ?", (tenant, rule_id))
        self.drop_windows(tenant, rule_id)

    # --- anomaly detectors ---------------------------------------------------------------------

    def detector(self, tenant: str, rule_id: str) -> tuple[int, bytes] | None:
        """The next window start the rule's detector has to learn, and its pickled state."""
        with self._lock:
            row = self._db.execute(
                "SELECT next_start, payload FROM detectors WHERE tenant = ? AND rule_id = ?", (tenant, rule_id)
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def put_detector(self, tenant: str, rule_id: str, next_start: int, payload: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO detectors (tenant, rule_id, next_start, payload) VALUES (?, ?, ?, ?)",
                (tenant, rule_id, next_start, payload),
            )

    def earliest_window(self, tenant: str, rule_id: str) -> int | None:
        with self._lock:
            (earliest,) = self._db.execute(
                "SELECT MIN(window_start) FROM windows WHERE tenant = ? AND rule_id = ?", (tenant, rule_id)
            ).fetchone()
        return None if earliest is None else int(earliest)

    # --- seen posts ----------------------------------------------------------------------------

    def seen(self, tenant: str, keys: list[str]) -> set[str]:
        """Which of these posts were already evaluated (deliveries are at-least-once)."""
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(keys), IN_CHUNK):
                chunk = keys[i : i + IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT post_key FROM seen_posts WHERE tenant = ? AND post_key IN ({marks})",
                    (tenant, *chunk),
                )
                found.update(key for (key,) in rows)
        return found

    def mark_seen(self, tenant: str, posts: Iterable[tuple[str, int]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO seen_posts (tenant, post_key, event_ts) VALUES (?, ?, ?)",
                ((tenant, key, ts) for key, ts in posts),
            )

    def latest_seen(self, tenant: str) -> int:
        with self._lock:
            (latest,) = self._db.execute("SELECT MAX(event_ts) FROM seen_posts WHERE tenant = ?", (tenant,)).fetchone()
        return int(latest or 0)

    def prune_seen(self, tenant: str, before_ts: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM seen_posts WHERE tenant = ? AND event_ts < ?", (tenant, before_ts))

    # --- windows -------------------------------------------------------------------------------

    def window(self, tenant: str, rule_id: str, start: int) -> WindowCounts | None:
        return self.windows(tenant, rule_id, start, start + 1).get(start)

    def windows(self, tenant: str, rule_id: str, from_start: int, to_start: int) -> dict[int, WindowCounts]:
        """The rule's windows starting in [from_start, to_start), with all their counters."""
        with self._lock:
            rows = self._db.execute(
                "SELECT window_start, count, negative, max_followers, max_relevance, samples, extra FROM windows "
                "WHERE tenant = ? AND rule_id = ? AND window_start >= ? AND window_start < ?",
                (tenant, rule_id, from_start, to_start),
            ).fetchall()
        return {row[0]: _counts(*row[1:]) for row in rows}

    def put_window(self, tenant: str, rule_id: str, start: int, counts: WindowCounts) -> None:
        extra = {
            "max_engagement": counts.max_engagement, "authors": sorted(counts.authors), "terms": counts.terms,
            "top_post": counts.top_post, "toned": counts.toned, "angry": counts.angry, "abusive": counts.abusive,
            "abuse_topics": counts.abuse_topics, "abuse_samples": counts.abuse_samples,
        }
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO windows (tenant, rule_id, window_start, count, negative, max_followers, "
                "max_relevance, samples, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant, rule_id, start, counts.count, counts.negative, counts.max_followers,
                    counts.max_relevance, json.dumps(counts.samples), json.dumps(extra),
                ),
            )

    def window_counts(self, tenant: str, rule_id: str, from_start: int, to_start: int) -> dict[int, int]:
        """Post counts of the rule's windows starting in [from_start, to_start)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT window_start, count FROM windows WHERE tenant = ? AND rule_id = ? "
                "AND window_start >= ? AND window_start < ?",
                (tenant, rule_id, from_start, to_start),
            ).fetchall()
        return dict(rows)

    def latest_window(self, tenant: str, rule_id: str) -> int | None:
        with self._lock:
            (latest,) = self._db.execute(
                "SELECT MAX(window_start) FROM windows WHERE tenant = ? AND rule_id = ?", (tenant, rule_id)
            ).fetchone()
        return None if latest is None else int(latest)

    def prune_windows(self, tenant: str, rule_id: str, before_start: int) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM windows WHERE tenant = ? AND rule_id = ? AND window_start < ?",
                (tenant, rule_id, before_start),
            )

    # --- alerts --------------------------------------------------------------------------------

    def alert(self, alert_id: str) -> alerting_pb2.Alert | None:
        with self._lock:
            row = self._db.execute("SELECT payload FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else alerting_pb2.Alert.FromString(row[0])

    def put_alert(self, alert: alerting_pb2.Alert) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO alerts (id, tenant, rule_id, window_start, state, priority, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.id, alert.tenant, alert.rule_id, alert.window_start.seconds, alert.state,
                    alert.priority, alert.SerializeToString(),
                ),
            )
            # The copy in Elasticsearch follows from this queue, in the same transaction: never lost.
            self._db.execute(
                "INSERT OR REPLACE INTO es_queue (alert_id, tenant, payload) VALUES (?, ?, ?)",
                (alert.id, alert.tenant, alert.SerializeToString()),
            )

    def firing_alerts(self, tenant: str, rule_id: str, before_start: int) -> list[alerting_pb2.Alert]:
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM alerts WHERE tenant = ? AND rule_id = ? AND state = ? AND window_start < ?",
                (tenant, rule_id, alerting_pb2.ALERT_STATE_FIRING, before_start),
            ).fetchall()
        return [alerting_pb2.Alert.FromString(payload) for (payload,) in rows]

    def alert_windows(self, tenant: str, rule_id: str, after_start: int, before_start: int) -> int:
        """Number of the rule's windows strictly between the two starts that raised an alert."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM alerts WHERE tenant = ? AND rule_id = ? AND window_start > ? "
                "AND window_start < ?",
                (tenant, rule_id, after_start, before_start),
            ).fetchone()
        return int(count)

    def list_alerts(self, tenant: str, limit: int, state: int = 0) -> list[alerting_pb2.Alert]:
        """Highest priority first; `state` 0 means any state."""
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM alerts WHERE tenant = ? AND (? = 0 OR state = ?) "
                "ORDER BY priority DESC, window_start DESC, id LIMIT ?",
                (tenant, state, state, limit),
            ).fetchall()
        return [alerting_pb2.Alert.FromString(payload) for (payload,) in rows]

    # --- events --------------------------------------------------------------------------------

    def add_event(self, kind: int, alert: alerting_pb2.Alert, at_s: float) -> int:
        """Records one change of an alert; its sequence (AUTOINCREMENT never reuses one) is the cursor."""
        event = alerting_pb2.AlertEvent(kind=kind, alert=alert)  # type: ignore[arg-type]
        event.at.FromNanoseconds(int(at_s * 1e9))
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (tenant, payload) VALUES (?, ?)", (alert.tenant, event.SerializeToString())
            )
        sequence = int(cursor.lastrowid or 0)
        self.last_sequence = sequence
        with self.changed:
            self.changed.notify_all()
        return sequence

    def events(self, tenant: str, after: int, limit: int) -> list[alerting_pb2.AlertEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sequence, payload FROM events WHERE tenant = ? AND sequence > ? ORDER BY sequence LIMIT ?",
                (tenant, after, limit),
            ).fetchall()
        events = []
        for sequence, payload in rows:
            event = alerting_pb2.AlertEvent.FromString(payload)
            event.sequence = sequence
            events.append(event)
        return events


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
