"""The durable spool between acknowledging a post and forwarding it downstream.

A post is acknowledged only once it is here, so a crash or a downstream outage never loses one. The
service and the forwarder see only the Spool protocol, so that a message broker can take SQLite's
place when one process per node is no longer enough. Forwarded rows are kept: they are what exact
duplicate detection checks against, and what operators look at when a post went missing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.common.errors import ResourceExhausted


@dataclass(frozen=True)
class SpoolEntry:
    """A validated, normalized post ready to be stored."""

    tenant: str
    channel: str
    post_id: str
    author: str
    payload: bytes
    trace_context: str = ""
    signature: bytes | None = None


@dataclass(frozen=True)
class SpooledPost:
    """A stored post waiting to be forwarded; seq gives the order of acceptance."""

    seq: int
    payload: bytes
    trace_context: str


@dataclass(frozen=True)
class SpoolStats:
    accepted: int
    forwarded: int
    failed: int
    pending: int
    rejected: int
    duplicates: int


@dataclass(frozen=True)
class RememberedSignature:
    """What near-duplicate marking needs to rebuild its memory after a restart."""

    tenant: str
    author: str
    signature: bytes


class SpoolFull(ResourceExhausted):
    """Too many posts wait for the forwarder; the caller should slow down and retry."""


class Spool(Protocol):
    def append(self, entries: Sequence[SpoolEntry], rejected: int = 0) -> list[bool]:
        """Stores the batch atomically; per entry True if stored, False if an exact duplicate.

        Raises SpoolFull, storing nothing, when the pending posts reached the capacity.
        """

    def next_batch(self, limit: int) -> list[SpooledPost]:
        """The oldest pending posts, in acceptance order."""

    def mark_forwarded(self, forwarded: Sequence[int], failed: Mapping[int, str] | None = None) -> None:
        """Ends the posts' journey: forwarded, or refused downstream (seq -> reason)."""

    def recent_signatures(self, limit: int) -> list[RememberedSignature]:
        """Signatures of the most recently accepted posts, oldest first."""

    def stats(self) -> SpoolStats: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    post_id TEXT NOT NULL,
    author TEXT NOT NULL,
    signature BLOB,
    payload BLOB NOT NULL,
    trace_context TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'forwarded', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    accepted_at REAL NOT NULL,
    finished_at REAL,
    UNIQUE (tenant, channel, post_id)
);
CREATE INDEX IF NOT EXISTS posts_pending ON posts (seq) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES
    ('accepted', 0), ('forwarded', 0), ('failed', 0), ('rejected', 0), ('duplicates', 0);
"""


class SqliteSpool:
    """A Spool in one SQLite file: WAL, synchronous=FULL, one transaction per call.

    One connection behind a lock: SQLite serializes writers anyway, and the lock makes the capacity
    check and the insert one atomic step.
    """

    def __init__(self, path: Path, max_pending: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def _counters(self) -> dict[str, int]:
        return {name: int(value) for name, value in self._db.execute("SELECT name, value FROM counters")}

    def _bump(self, name: str, amount: int) -> None:
        if amount:
            self._db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (amount, name))

    @staticmethod
    def _pending(counters: Mapping[str, int]) -> int:
        return counters["accepted"] - counters["forwarded"] - counters["failed"]

    def append(self, entries: Sequence[SpoolEntry], rejected: int = 0) -> list[bool]:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if entries and self._pending(self._counters()) >= self.max_pending:
                    raise SpoolFull(f"spool holds {self.max_pending} pending posts; retry later")
                stored = [
                    self._db.execute(
                        "INSERT OR IGNORE INTO posts (tenant, channel, post_id, author, signature,"
                        " payload, trace_context, accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (e.tenant, e.channel, e.post_id, e.author, e.signature, e.payload,
                         e.trace_context, now),
                    ).rowcount
                    == 1
                    for e in entries
                ]
                self._bump("accepted", sum(stored))
                self._bump("duplicates", len(stored) - sum(stored))
                self._bump("rejected", rejected)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored

    def next_batch(self, limit: int) -> list[SpooledPost]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload, trace_context FROM posts WHERE status = 'pending'"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledPost(seq, bytes(payload), trace) for seq, payload, trace in rows]

    def mark_forwarded(self, forwarded: Sequence[int], failed: Mapping[int, str] | None = None) -> None:
        failed = failed or {}
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = self._db.executemany(
                    "UPDATE posts SET status = 'forwarded', finished_at = ?"
                    " WHERE seq = ? AND status = 'pending'",
                    [(now, seq) for seq in forwarded],
                ).rowcount
                refused = self._db.executemany(
                    "UPDATE posts SET status = 'failed', error = ?, finished_at = ?"
                    " WHERE seq = ? AND status = 'pending'",
                    [(reason, now, seq) for seq, reason in failed.items()],
                ).rowcount
                self._bump("forwarded", max(done, 0))
                self._bump("failed", max(refused, 0))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def recent_signatures(self, limit: int) -> list[RememberedSignature]:
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant, author, signature FROM posts WHERE signature IS NOT NULL"
                " ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [RememberedSignature(t, a, bytes(s)) for t, a, s in reversed(rows)]

    def stats(self) -> SpoolStats:
        with self._lock:
            counters = self._counters()
        return SpoolStats(
            accepted=counters["accepted"],
            forwarded=counters["forwarded"],
            failed=counters["failed"],
            pending=self._pending(counters),
            rejected=counters["rejected"],
            duplicates=counters["duplicates"],
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
