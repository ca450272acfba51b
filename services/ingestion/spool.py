"""The durable spool between acknowledging a post and forwarding it downstream.

A post is acknowledged only once it is here, so a crash or a downstream outage never loses one. The
service and the forwarder see only the Spool protocol, so that a message broker can take SQLite's
place when one process per node is no longer enough. Forwarded rows are kept for the retention
period: they are what exact duplicate detection checks against, and what operators look at when a
post went missing. The counters live apart from the rows, so pruning changes no figure.

A post its author deleted becomes a tombstone in place: its row keeps only tenant, channel, id and
the time of the deletion (the text, the author and the signature go at once), so the same post is a
DUPLICATE if a channel serves it again; its removal downstream waits in the `deletions` table
until the forwarder has carried it out.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from civic.listening.v1 import post_pb2
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
    deleted: int = 0
    deletions_pending: int = 0


@dataclass(frozen=True)
class Deletion:
    """A post turned tombstone whose removal downstream (search, marks) is still to be done."""

    seq: int
    tenant: str
    channel: str
    post_id: str


@dataclass(frozen=True)
class FailedPost:
    """A dead letter: a post the forwarder gave up on, with the reason and when (epoch seconds)."""

    seq: int
    tenant: str
    channel: str
    post_id: str
    reason: str
    failed_at: float


@dataclass(frozen=True)
class RememberedSignature:
    """What near-duplicate marking needs to rebuild its memory after a restart."""

    tenant: str
    author: str
    signature: bytes


SPOOL_FULL_RETRY_S = 5.0


class SpoolFull(ResourceExhausted):
    """Too many posts wait for the forwarder; the caller should slow down and retry after the hint."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_s=SPOOL_FULL_RETRY_S)


class Spool(Protocol):
    def append(self, entries: Sequence[SpoolEntry], rejected: Mapping[str, int] | None = None) -> list[bool]:
        """Stores the batch atomically; per entry True if stored, False if an exact duplicate.
        `rejected` counts, per tenant, the batch's posts that failed validation.

        Raises SpoolFull, storing nothing, when the pending posts reached the capacity.
        """

    def next_batch(self, limit: int, after: int = 0) -> list[SpooledPost]:
        """The oldest pending posts (accepted after the post numbered `after`), in acceptance order."""

    def mark_forwarded(self, forwarded: Sequence[int], failed: Mapping[int, str] | None = None) -> None:
        """Ends the posts' journey: forwarded, or refused downstream (seq -> reason)."""

    def failed_posts(self, tenant: str, post_ids: Sequence[str] = (), limit: int = 20) -> tuple[int, list[FailedPost]]:
        """How many of the tenant's posts failed (of these ids, when given), and the latest failures."""

    def requeue(self, tenant: str, post_ids: Sequence[str] = (), limit: int = 5000) -> int:
        """Puts the tenant's oldest failed posts (of these ids, when given) back in the queue, at their
        place in acceptance order; returns how many."""

    def recent_signatures(self, limit: int) -> list[RememberedSignature]:
        """Signatures of the most recently accepted posts, oldest first."""

    def delete(self, tenant: str, posts: Sequence[tuple[str, str]]) -> int:
        """Turns these (channel, id) posts of the tenant into tombstones and queues their removal
        downstream; a pending one is never forwarded. Returns how many were stored and not yet
        tombstones (the others are nothing to do)."""

    def next_deletions(self, limit: int) -> list[Deletion]:
        """The oldest removals still to carry out downstream."""

    def mark_deleted(self, done: Sequence[int]) -> None:
        """These removals (Deletion.seq) are carried out."""

    def prune(self, forwarded_before: float) -> int:
        """Removes the posts forwarded, and the tombstones made, before this time (epoch seconds);
        returns how many."""

    def stats(self, tenant: str = "") -> SpoolStats:
        """One tenant's counters, or every tenant's when tenant is empty."""

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
CREATE INDEX IF NOT EXISTS posts_forwarded ON posts (finished_at) WHERE status = 'forwarded';
CREATE INDEX IF NOT EXISTS posts_failed ON posts (tenant, seq) WHERE status = 'failed';
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES
    ('accepted', 0), ('forwarded', 0), ('failed', 0), ('rejected', 0), ('duplicates', 0);
CREATE TABLE IF NOT EXISTS tenant_counters (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('deleted', 0), ('withdrawn', 0);
CREATE TABLE IF NOT EXISTS deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    post_id TEXT NOT NULL,
    requested_at REAL NOT NULL
);
"""
# A post deleted by its author keeps only this much: who owned it, its channel and id, and when it
# went (the row's deleted_at), so that it is never accepted, forwarded nor shown again.
_TOMBSTONE_COLUMN = "ALTER TABLE posts ADD COLUMN deleted_at REAL"
# SQLite's default bound on the parameters of one statement is 32766; stay well under it.
_MAX_PARAMETERS = 1000
_PRUNE_STEP = 5000
_COUNTERS = ("accepted", "forwarded", "failed", "rejected", "duplicates", "deleted", "withdrawn")
# A spool made before tenant_counters existed: its posts give each tenant's accepted, forwarded and
# failed figures; its duplicates and rejections were counted for all tenants only.
_BACKFILL_TENANT_COUNTERS = """
INSERT INTO tenant_counters (tenant, name, value)
SELECT tenant, 'accepted', COUNT(*) FROM posts GROUP BY tenant
UNION ALL
SELECT tenant, status, COUNT(*) FROM posts WHERE status != 'pending' GROUP BY tenant, status
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
        had_tenant_counters = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tenant_counters'"
        ).fetchone()
        backfill = "" if had_tenant_counters else _BACKFILL_TENANT_COUNTERS + ";"
        self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}{backfill}COMMIT;")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(posts)")}
        if "deleted_at" not in columns:  # a spool made before tombstones
            self._db.execute(_TOMBSTONE_COLUMN)

    def _counters(self, tenant: str = "") -> dict[str, int]:
        if not tenant:
            return {name: int(value) for name, value in self._db.execute("SELECT name, value FROM counters")}
        found = dict(self._db.execute("SELECT name, value FROM tenant_counters WHERE tenant = ?", (tenant,)))
        return {name: int(found.get(name, 0)) for name in _COUNTERS}

    def _bump(self, name: str, per_tenant: Mapping[str, int]) -> None:
        """Adds to the all-tenants counter and to each tenant's."""
        total = sum(per_tenant.values())
        if not total:
            return
        self._db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (total, name))
        self._db.executemany(
            "INSERT INTO tenant_counters (tenant, name, value) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant, name) DO UPDATE SET value = value + excluded.value",
            [(tenant, name, amount) for tenant, amount in per_tenant.items() if amount],
        )

    @staticmethod
    def _pending(counters: Mapping[str, int]) -> int:
        """Withdrawn: deleted by their authors while pending, so never forwarded."""
        return counters["accepted"] - counters["forwarded"] - counters["failed"] - counters["withdrawn"]

    def append(self, entries: Sequence[SpoolEntry], rejected: Mapping[str, int] | None = None) -> list[bool]:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if entries and self._pending(self._counters()) >= self.max_pending:
                    raise SpoolFull(
                        f"spool holds {self.max_pending} pending posts; retry in {SPOOL_FULL_RETRY_S:.0f}s"
                    )
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
                self._bump("accepted", Counter(e.tenant for e, kept in zip(entries, stored, strict=True) if kept))
                self._bump("duplicates", Counter(e.tenant for e, kept in zip(entries, stored, strict=True) if not kept))
                self._bump("rejected", rejected or {})
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored

    def next_batch(self, limit: int, after: int = 0) -> list[SpooledPost]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload, trace_context FROM posts WHERE status = 'pending' AND deleted_at IS NULL"
                " AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [SpooledPost(seq, bytes(payload), trace) for seq, payload, trace in rows]

    def mark_forwarded(self, forwarded: Sequence[int], failed: Mapping[int, str] | None = None) -> None:
        failed = failed or {}
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = self._tenants_of_pending(forwarded)
                self._db.executemany(
                    "UPDATE posts SET status = 'forwarded', finished_at = ?"
                    " WHERE seq = ? AND status = 'pending' AND deleted_at IS NULL",
                    [(now, seq) for seq in forwarded],
                )
                refused = self._tenants_of_pending(list(failed))
                self._db.executemany(
                    "UPDATE posts SET status = 'failed', error = ?, finished_at = ?"
                    " WHERE seq = ? AND status = 'pending' AND deleted_at IS NULL",
                    [(reason, now, seq) for seq, reason in failed.items()],
                )
                self._bump("forwarded", done)
                self._bump("failed", refused)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _tenants_of_pending(self, seqs: Sequence[int]) -> Counter[str]:
        """How many of these posts each tenant has still pending (a post is counted done once)."""
        tenants: Counter[str] = Counter()
        for start in range(0, len(seqs), _MAX_PARAMETERS):
            chunk = seqs[start:start + _MAX_PARAMETERS]
            tenants.update(dict(self._db.execute(
                f"SELECT tenant, COUNT(*) FROM posts WHERE status = 'pending' AND deleted_at IS NULL AND seq IN"
                f" ({','.join('?' * len(chunk))}) GROUP BY tenant",
                chunk,
            )))
        return tenants

    @staticmethod
    def _failed_where(tenant: str, post_ids: Sequence[str]) -> tuple[str, list[str]]:
        ids = f" AND post_id IN ({','.join('?' * len(post_ids))})" if post_ids else ""
        return f"status = 'failed' AND deleted_at IS NULL AND tenant = ?{ids}", [tenant, *post_ids]

    def failed_posts(self, tenant: str, post_ids: Sequence[str] = (), limit: int = 20) -> tuple[int, list[FailedPost]]:
        where, parameters = self._failed_where(tenant, post_ids)
        with self._lock:
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM posts WHERE {where}", parameters).fetchone()
            rows = self._db.execute(
                f"SELECT seq, tenant, channel, post_id, error, finished_at FROM posts WHERE {where}"
                " ORDER BY finished_at DESC, seq DESC LIMIT ?",
                [*parameters, limit],
            ).fetchall()
        return int(total), [FailedPost(*row) for row in rows]

    def requeue(self, tenant: str, post_ids: Sequence[str] = (), limit: int = 5000) -> int:
        where, parameters = self._failed_where(tenant, post_ids)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                moved = self._db.execute(
                    "UPDATE posts SET status = 'pending', error = '', finished_at = NULL WHERE seq IN"
                    f" (SELECT seq FROM posts WHERE {where} ORDER BY seq LIMIT ?)",
                    [*parameters, limit],
                ).rowcount
                self._bump("failed", {tenant: -moved})
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(moved)

    def recent_signatures(self, limit: int) -> list[RememberedSignature]:
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant, author, signature FROM posts WHERE signature IS NOT NULL"
                " ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [RememberedSignature(t, a, bytes(s)) for t, a, s in reversed(rows)]

    def delete(self, tenant: str, posts: Sequence[tuple[str, str]]) -> int:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                tombstoned = withdrawn = dead_letters = 0
                for channel, post_id in dict.fromkeys(posts):
                    row = self._db.execute(
                        "SELECT seq, status FROM posts WHERE tenant = ? AND channel = ? AND post_id = ?"
                        " AND deleted_at IS NULL", (tenant, channel, post_id)).fetchone()
                    if row is None:
                        continue
                    tombstone = post_pb2.Post(id=post_id, tenant=tenant, channel=channel)
                    self._db.execute(
                        "UPDATE posts SET payload = ?, author = '', signature = NULL, trace_context = '',"
                        " deleted_at = ? WHERE seq = ?", (tombstone.SerializeToString(), now, row[0]))
                    self._db.execute("INSERT INTO deletions (tenant, channel, post_id, requested_at)"
                                     " VALUES (?, ?, ?, ?)", (tenant, channel, post_id, now))
                    tombstoned += 1
                    withdrawn += row[1] in ("pending", "failed")
                    dead_letters += row[1] == "failed"
                self._bump("deleted", {tenant: tombstoned})
                # Never forwarded, now never to be: neither pending nor a dead letter to replay.
                self._bump("withdrawn", {tenant: withdrawn})
                self._bump("failed", {tenant: -dead_letters})
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return tombstoned

    def next_deletions(self, limit: int) -> list[Deletion]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, tenant, channel, post_id FROM deletions ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [Deletion(*row) for row in rows]

    def mark_deleted(self, done: Sequence[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM deletions WHERE seq = ?", [(seq,) for seq in done])

    def prune(self, forwarded_before: float) -> int:
        """In steps of _PRUNE_STEP rows, so that appends wait for one short transaction at most.

        A tombstone stays for the retention period after the deletion, however old the post."""
        removed = 0
        while True:
            with self._lock:
                step = self._db.execute(
                    "DELETE FROM posts WHERE seq IN (SELECT seq FROM posts WHERE status = 'forwarded'"
                    " AND finished_at < ? AND deleted_at IS NULL LIMIT ?)"
                    " OR seq IN (SELECT seq FROM posts WHERE deleted_at < ? LIMIT ?)",
                    (forwarded_before, _PRUNE_STEP, forwarded_before, _PRUNE_STEP),
                ).rowcount
            removed += step
            if step < _PRUNE_STEP:
                return removed

    def stats(self, tenant: str = "") -> SpoolStats:
        with self._lock:
            counters = self._counters(tenant)
            where, args = ("WHERE tenant = ?", (tenant,)) if tenant else ("", ())
            (queued,) = self._db.execute(f"SELECT COUNT(*) FROM deletions {where}", args).fetchone()
        return SpoolStats(
            accepted=counters["accepted"],
            forwarded=counters["forwarded"],
            failed=counters["failed"],
            pending=self._pending(counters),
            rejected=counters["rejected"],
            duplicates=counters["duplicates"],
            deleted=counters["deleted"],
            deletions_pending=int(queued),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
