"""Registered channel sources: their configuration, secret, cursor and counters, per tenant.

Kept in the spool's SQLite file (its own table and connection), so that one persistent volume holds
everything ingestion must not lose, and a source's cursor survives restarts with the posts it
delivered. Secrets are stored to be used by connectors and never leave through `to_proto`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from civic.listening.v1 import ingestion_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.validation import require_tenant
from services.ingestion.connectors import KINDS, STREAMS, WEBHOOK, check_params
from services.ingestion.connectors.base import SourceConfig

DEFAULT_INTERVAL_S = 300
MAX_NAME_CHARS = 100
MAX_URL_CHARS = 2048
MAX_SECRET_CHARS = 4096
MAX_PARAMS = 20
MAX_PARAM_NAME_CHARS = 64
MAX_PARAM_CHARS = 1000
ACTIVE, PAUSED = "active", "paused"
_STATES = {ACTIVE: ingestion_pb2.SOURCE_STATE_ACTIVE, PAUSED: ingestion_pb2.SOURCE_STATE_PAUSED}
_URL_SCHEMES = {"http", "https", "ws", "wss"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    params TEXT NOT NULL,
    secret TEXT NOT NULL,
    interval_s INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'paused')),
    cursor TEXT NOT NULL DEFAULT '{}',
    last_error TEXT NOT NULL DEFAULT '',
    last_polled_at REAL,
    next_poll_at REAL NOT NULL DEFAULT 0,
    polls INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE (tenant, name)
);
"""
# Added after the table: a store made before gets the column at start-up.
_DELETED_COLUMN = "ALTER TABLE sources ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0"
_COLUMNS = (
    "id, tenant, name, kind, url, params, secret, interval_s, state, cursor, last_error, last_polled_at,"
    " polls, accepted, duplicates, rejected, skipped, errors, created_at, deleted"
)


@dataclass(frozen=True)
class PollOutcome:
    """What one poll, push or subscription checkpoint did, to add to the source's counters."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    error: str = ""
    deleted: int = 0


def validate_spec(spec: ingestion_pb2.SourceSpec) -> None:
    require_tenant(spec.tenant, "spec.tenant")
    if not spec.name.strip() or len(spec.name) > MAX_NAME_CHARS:
        raise InvalidArgument("spec.name", f"must be 1 to {MAX_NAME_CHARS} characters")
    if spec.kind not in KINDS:
        raise InvalidArgument("spec.kind", f"must be one of {', '.join(KINDS)}, got {spec.kind!r}")
    if len(spec.url) > MAX_URL_CHARS:
        raise InvalidArgument("spec.url", f"must be at most {MAX_URL_CHARS:,} characters")
    if len(spec.secret) > MAX_SECRET_CHARS:
        raise InvalidArgument("spec.secret", f"must be at most {MAX_SECRET_CHARS:,} characters")
    if len(spec.params) > MAX_PARAMS or any(
        len(name) > MAX_PARAM_NAME_CHARS or len(value) > MAX_PARAM_CHARS for name, value in spec.params.items()
    ):
        raise InvalidArgument("spec.params", f"at most {MAX_PARAMS} options, names of at most {MAX_PARAM_NAME_CHARS} "
                                             f"characters, values of at most {MAX_PARAM_CHARS:,}")
    if spec.kind == WEBHOOK:
        if not spec.secret:
            raise InvalidArgument("spec.secret", "a webhook source needs its HMAC signing secret")
    elif urlsplit(spec.url).scheme not in _URL_SCHEMES or not urlsplit(spec.url).netloc:
        raise InvalidArgument("spec.url", f"must be an absolute http(s) or ws(s) URL, got {spec.url!r}")
    if spec.interval_s < 0:
        raise InvalidArgument("spec.interval_s", "must not be negative")
    check_params(spec.kind, spec.params)


class SourceStore:
    """All reads and writes of the sources table, each one short transaction behind a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        if "deleted" not in {row[1] for row in self._db.execute("PRAGMA table_info(sources)")}:
            self._db.execute(_DELETED_COLUMN)

    def create(self, spec: ingestion_pb2.SourceSpec) -> ingestion_pb2.Source:
        validate_spec(spec)
        source_id = uuid.uuid4().hex[:16]
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO sources (id, tenant, name, kind, url, params, secret, interval_s, state,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (source_id, spec.tenant, spec.name, spec.kind, spec.url, json.dumps(dict(spec.params)),
                     spec.secret, spec.interval_s or DEFAULT_INTERVAL_S, ACTIVE, time.time()),
                )
        except sqlite3.IntegrityError as exc:
            raise InvalidArgument("spec.name", f"tenant {spec.tenant} already has a source {spec.name!r}") from exc
        return self.get(spec.tenant, source_id)

    def _rows(self, where: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(f"SELECT {_COLUMNS} FROM sources WHERE {where}", args))

    def get(self, tenant: str, source_id: str) -> ingestion_pb2.Source:
        rows = self._rows("tenant = ? AND id = ?", (tenant, source_id))
        if not rows:
            raise NotFound(f"source {source_id!r} of tenant {tenant!r}")
        return _to_proto(rows[0])

    def list_sources(self, tenant: str) -> list[ingestion_pb2.Source]:
        return [_to_proto(row) for row in self._rows("tenant = ? ORDER BY created_at, id", (tenant,))]

    def set_state(self, tenant: str, source_id: str, state: str) -> ingestion_pb2.Source:
        self.get(tenant, source_id)
        with self._lock:
            self._db.execute("UPDATE sources SET state = ?, next_poll_at = 0 WHERE id = ?", (state, source_id))
        return self.get(tenant, source_id)

    def delete(self, tenant: str, source_id: str) -> None:
        self.get(tenant, source_id)
        with self._lock:
            self._db.execute("DELETE FROM sources WHERE id = ?", (source_id,))

    def due(self, now: float) -> list[str]:
        """Active polled sources whose next poll time has come, most overdue first."""
        unpolled = (WEBHOOK, *STREAMS)
        rows = self._rows(f"state = ? AND kind NOT IN ({', '.join('?' * len(unpolled))}) AND next_poll_at <= ?"
                          " ORDER BY next_poll_at", (ACTIVE, *unpolled, now))
        return [str(row[0]) for row in rows]

    def subscriptions(self) -> list[str]:
        """Active sources of streaming kinds: each has a subscription open while it is active."""
        rows = self._rows(f"state = ? AND kind IN ({', '.join('?' * len(STREAMS))}) ORDER BY created_at",
                          (ACTIVE, *STREAMS))
        return [str(row[0]) for row in rows]

    def config(self, source_id: str) -> tuple[SourceConfig, dict[str, str], str]:
        """The connector's view of a source (secret included), its cursor and its state."""
        rows = self._rows("id = ?", (source_id,))
        if not rows:
            raise NotFound(f"source {source_id!r}")
        row = rows[0]
        config = SourceConfig(
            tenant=str(row[1]), name=str(row[2]), kind=str(row[3]), url=str(row[4]),
            params=json.loads(str(row[5])), secret=str(row[6]),
        )
        return config, json.loads(str(row[9])), str(row[8])

    def record(self, source_id: str, outcome: PollOutcome, cursor: Mapping[str, str] | None, now: float) -> None:
        """Adds a poll's counts; a None cursor keeps the old one (the posts were not all spooled)."""
        with self._lock:
            self._db.execute(
                "UPDATE sources SET polls = polls + 1, accepted = accepted + ?, duplicates = duplicates + ?,"
                " rejected = rejected + ?, skipped = skipped + ?, errors = errors + ?, last_error = ?,"
                " last_polled_at = ?, next_poll_at = ? + interval_s, cursor = COALESCE(?, cursor),"
                " deleted = deleted + ? WHERE id = ?",
                (outcome.accepted, outcome.duplicates, outcome.rejected, outcome.skipped, int(bool(outcome.error)),
                 outcome.error, now, now, None if cursor is None else json.dumps(dict(cursor)), outcome.deleted,
                 source_id),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _to_proto(row: tuple[object, ...]) -> ingestion_pb2.Source:
    (source_id, tenant, name, kind, url, params, secret, interval_s, state, cursor, last_error, last_polled_at,
     polls, accepted, duplicates, rejected, skipped, errors, created_at, deleted) = row
    source = ingestion_pb2.Source(
        id=str(source_id), tenant=str(tenant), name=str(name), kind=str(kind), url=str(url),
        params=json.loads(str(params)), has_secret=bool(secret), interval_s=int(str(interval_s)),
        state=_STATES[str(state)],
        status=ingestion_pb2.SourceStatus(
            cursor=str(cursor), last_error=str(last_error), polls=int(str(polls)), accepted=int(str(accepted)),
            duplicates=int(str(duplicates)), rejected=int(str(rejected)), skipped=int(str(skipped)),
            errors=int(str(errors)), deleted=int(str(deleted)),
        ),
    )
    source.created_at.FromSeconds(int(float(str(created_at))))
    if last_polled_at is not None:
        source.status.last_polled_at.FromSeconds(int(float(str(last_polled_at))))
    return source
