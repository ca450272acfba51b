"""The SQLite spool: durability, order, duplicates, capacity and counters."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from civic.listening.v1 import post_pb2
from services.ingestion.spool import SpoolEntry, SpoolFull, SqliteSpool


def entry(post_id: str, tenant: str = "city-a", signature: bytes | None = None) -> SpoolEntry:
    return SpoolEntry(
        tenant=tenant,
        channel="rss",
        post_id=post_id,
        author=f"author-{post_id}",
        payload=f"payload-{post_id}".encode(),
        trace_context="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        signature=signature,
    )


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "spool.sqlite3"


def test_uses_wal_and_full_sync(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    spool.close()
    with sqlite3.connect(spool_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_posts_survive_a_reopen_in_order(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    assert spool.append([entry("b"), entry("a"), entry("c")]) == [True, True, True]
    spool.close()
    reopened = SqliteSpool(spool_path, max_pending=10)
    batch = reopened.next_batch(10)
    assert [p.payload for p in batch] == [b"payload-b", b"payload-a", b"payload-c"]
    assert [p.seq for p in batch] == sorted(p.seq for p in batch)
    assert batch[0].trace_context.startswith("00-0af7651916cd43dd")
    assert reopened.stats().pending == 3
    reopened.close()


def test_exact_duplicates_are_not_stored_again(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    assert spool.append([entry("a")]) == [True]
    assert spool.append([entry("a"), entry("a", tenant="city-b"), entry("b"), entry("b")]) == [
        False, True, True, False,
    ]
    stats = spool.stats()
    assert (stats.accepted, stats.duplicates, stats.pending) == (3, 2, 3)


def test_forwarded_and_failed_posts_leave_the_queue_and_are_counted(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry(str(n)) for n in range(5)], rejected={"city-a": 2})
    first = spool.next_batch(3)
    spool.mark_forwarded([first[0].seq, first[2].seq], {first[1].seq: "IndexPosts: mapping conflict"})
    assert [p.payload for p in spool.next_batch(10)] == [b"payload-3", b"payload-4"]
    spool.mark_forwarded([first[0].seq])  # a resend after a crash changes nothing
    stats = spool.stats()
    assert (stats.accepted, stats.forwarded, stats.failed, stats.pending, stats.rejected) == (5, 2, 1, 2, 2)
    with sqlite3.connect(spool_path) as other:
        assert other.execute("SELECT post_id, status, error FROM posts WHERE status != 'forwarded'"
                             " ORDER BY seq").fetchall() == [
            ("1", "failed", "IndexPosts: mapping conflict"), ("3", "pending", ""), ("4", "pending", ""),
        ]
    spool.close()
    assert SqliteSpool(spool_path, max_pending=10).stats() == stats


def test_a_full_spool_refuses_the_whole_batch(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=3)
    spool.append([entry("a"), entry("b"), entry("c")])
    with pytest.raises(SpoolFull):
        spool.append([entry("d")])
    assert spool.stats().accepted == 3
    spool.mark_forwarded([spool.next_batch(1)[0].seq])
    assert spool.append([entry("d"), entry("e")]) == [True, True]
    assert spool.stats().pending == 4


def test_recent_signatures_oldest_first_and_limited(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry("a", signature=b"1"), entry("b"), entry("c", signature=b"3"), entry("d", signature=b"4")])
    assert [r.signature for r in spool.recent_signatures(2)] == [b"3", b"4"]
    assert spool.recent_signatures(10)[0].author == "author-a"


def test_each_tenant_has_its_own_figures_beside_the_totals(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry("1"), entry("2"), entry("1", tenant="city-b")], rejected={"city-a": 1, "city-b": 2})
    spool.append([entry("2"), entry("3", tenant="city-b")])
    batch = spool.next_batch(10)
    spool.mark_forwarded([batch[0].seq, batch[2].seq], {batch[3].seq: "IndexPosts: mapping conflict"})
    spool.mark_forwarded([batch[0].seq])  # a resend after a crash counts nothing twice
    figures = {tenant: spool.stats(tenant) for tenant in ("city-a", "city-b", "city-c")}
    summary = {tenant: (s.accepted, s.forwarded, s.failed, s.pending, s.rejected, s.duplicates)
               for tenant, s in figures.items()}
    assert summary == {"city-a": (2, 1, 0, 1, 1, 1), "city-b": (2, 1, 1, 0, 2, 0), "city-c": (0, 0, 0, 0, 0, 0)}
    total = spool.stats()
    assert (total.accepted, total.forwarded, total.failed, total.pending, total.rejected, total.duplicates) == \
        (4, 2, 1, 1, 3, 1)
    spool.close()


def test_a_spool_from_before_tenant_figures_gets_them_from_its_posts(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry("1"), entry("2"), entry("1", tenant="city-b")], rejected={"city-a": 1})
    spool.mark_forwarded([spool.next_batch(1)[0].seq])
    spool.close()
    with sqlite3.connect(spool_path) as older:
        older.execute("DROP TABLE tenant_counters")
    reopened = SqliteSpool(spool_path, max_pending=10)
    a, b = reopened.stats("city-a"), reopened.stats("city-b")
    assert (a.accepted, a.forwarded, a.pending, a.rejected) == (2, 1, 1, 0)  # rejections were counted in total only
    assert (b.accepted, b.forwarded, b.pending) == (1, 0, 1)
    assert reopened.stats().rejected == 1
    reopened.close()
    assert SqliteSpool(spool_path, max_pending=10).stats("city-a").accepted == 2  # filled in once, not again


def test_prune_removes_only_posts_forwarded_before_the_cutoff(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry(str(n)) for n in range(3)])
    first, second, _ = spool.next_batch(3)
    spool.mark_forwarded([first.seq], {second.seq: "refused"})
    assert spool.prune(time.time() - 60) == 0
    assert spool.prune(time.time() + 1) == 1
    assert [p.payload for p in spool.next_batch(10)] == [b"payload-2"]
    # Once pruned, the same post is no longer an exact duplicate: it is accepted (and indexed idempotently).
    assert spool.append([entry("0"), entry("1")]) == [True, False]
    spool.close()


def test_failed_posts_are_listed_latest_first_and_requeued_oldest_first(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry(post_id) for post_id in ("a", "b", "c")] + [entry("x", tenant="city-b")])
    a, b, c, x = spool.next_batch(10)
    spool.mark_forwarded([], {a.seq: "first"})
    spool.mark_forwarded([], {b.seq: "second", c.seq: "third", x.seq: "other"})
    total, listed = spool.failed_posts("city-a", limit=2)
    assert total == 3 and [p.post_id for p in listed] == ["c", "b"]
    assert (listed[0].tenant, listed[0].channel, listed[0].reason) == ("city-a", "rss", "third")
    assert spool.failed_posts("city-a", ["a", "zz"])[0] == 1
    assert spool.requeue("city-a", limit=2) == 2  # the oldest two
    assert [p.seq for p in spool.next_batch(10)] == [a.seq, b.seq]
    stats, everyone = spool.stats("city-a"), spool.stats()
    assert (stats.failed, stats.pending, everyone.failed, everyone.pending) == (1, 2, 2, 2)
    assert spool.requeue("city-a", ["c"]) == 1 and spool.requeue("city-a", ["c"]) == 0
    assert spool.failed_posts("city-a") == (0, [])
    assert [p.seq for p in spool.next_batch(10, after=a.seq)] == [b.seq, c.seq]


def test_a_deleted_post_keeps_only_a_tombstone_and_its_removal_is_queued(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry("sent", signature=b"sig"), entry("waiting"), entry("kept")])
    sent, _, _ = spool.next_batch(3)
    spool.mark_forwarded([sent.seq])
    assert spool.delete("city-a", [("rss", "sent"), ("rss", "waiting"), ("rss", "never-seen"), ("rss", "sent")]) == 2
    assert spool.delete("city-b", [("rss", "kept")]) == 0  # another tenant's post is not this tenant's to delete
    rows = dict(spool._db.execute("SELECT post_id, payload FROM posts WHERE deleted_at IS NOT NULL").fetchall())
    assert {k: post_pb2.Post.FromString(v) for k, v in rows.items()} == {
        "sent": post_pb2.Post(id="sent", tenant="city-a", channel="rss"),
        "waiting": post_pb2.Post(id="waiting", tenant="city-a", channel="rss")}
    assert spool._db.execute("SELECT author, signature FROM posts WHERE post_id = 'sent'").fetchone() == ("", None)
    # The pending one is never forwarded, and no longer counts as pending.
    assert [p.payload for p in spool.next_batch(10)] == [b"payload-kept"]
    stats = spool.stats("city-a")
    assert (stats.deleted, stats.deletions_pending, stats.pending, stats.accepted) == (2, 2, 1, 3)
    # A channel serving it again is a duplicate, never a new post.
    assert spool.append([entry("sent")]) == [False]
    queued = spool.next_deletions(10)
    assert [(d.tenant, d.channel, d.post_id) for d in queued] == [("city-a", "rss", "sent"),
                                                                   ("city-a", "rss", "waiting")]
    spool.mark_deleted([d.seq for d in queued])
    assert spool.next_deletions(10) == [] and spool.stats().deletions_pending == 0
    assert spool.delete("city-a", [("rss", "sent")]) == 0  # already a tombstone
    spool.close()


def test_tombstones_outlive_the_post_for_the_retention_period(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry("old")])
    (old,) = spool.next_batch(1)
    spool.mark_forwarded([old.seq])
    spool._db.execute("UPDATE posts SET finished_at = finished_at - 86400 * 60")  # forwarded 60 days ago
    spool.delete("city-a", [("rss", "old")])
    assert spool.prune(time.time() - 86400 * 30) == 0  # deleted just now: the tombstone stays
    assert spool.append([entry("old")]) == [False]
    assert spool.prune(time.time() + 1) == 1


def test_a_spool_from_before_tombstones_gets_them(spool_path: Path) -> None:
    spool_path.parent.mkdir(parents=True)
    with sqlite3.connect(spool_path) as old:
        old.executescript(
            "CREATE TABLE posts (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, channel TEXT NOT NULL,"
            " post_id TEXT NOT NULL, author TEXT NOT NULL, signature BLOB, payload BLOB NOT NULL,"
            " trace_context TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
            " ('pending', 'forwarded', 'failed')), error TEXT NOT NULL DEFAULT '', accepted_at REAL NOT NULL,"
            " finished_at REAL, UNIQUE (tenant, channel, post_id));"
            "INSERT INTO posts (tenant, channel, post_id, author, payload, accepted_at)"
            " VALUES ('city-a', 'rss', 'x', 'a', x'00', 1);")
    spool = SqliteSpool(spool_path, max_pending=10)
    assert spool.delete("city-a", [("rss", "x")]) == 1 and spool.stats().deleted == 1


def test_a_deleted_dead_letter_is_neither_listed_nor_requeued(spool_path: Path) -> None:
    spool = SqliteSpool(spool_path, max_pending=10)
    spool.append([entry("bad"), entry("other")])
    bad, other = spool.next_batch(10)
    spool.mark_forwarded([other.seq], {bad.seq: "IndexPosts: refused"})
    assert spool.delete("city-a", [("rss", "bad")]) == 1
    assert spool.failed_posts("city-a") == (0, []) and spool.requeue("city-a") == 0
    stats = spool.stats("city-a")
    assert (stats.failed, stats.pending, stats.deleted) == (0, 0, 1)
    spool.close()
