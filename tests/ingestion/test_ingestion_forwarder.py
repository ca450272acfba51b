"""The forwarder while its downstream services are unreachable: posts stay pending, errors show."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc, post_pb2
from services.common.settings import Settings
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from services.ingestion.forwarder import BACKOFF_CAP_S, Forwarder, backoff_delay
from services.ingestion.spool import SpoolEntry, SqliteSpool


def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def unreachable_settings(tmp_path: Path) -> Settings:
    """Downstream targets on ports where nothing listens."""
    return Settings(
        spool_path=tmp_path / "spool.sqlite3",
        inference_target=f"127.0.0.1:{free_port()}",
        search_target=f"127.0.0.1:{free_port()}",
        alerting_target=f"127.0.0.1:{free_port()}",
        rpc_timeout_s=2.0,
    )


def make_post(post_id: str) -> post_pb2.Post:
    post = post_pb2.Post(id=post_id, tenant="city-a", channel="rss", text=f"Pothole number {post_id} on Main St.")
    post.created_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    return post


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(BACKOFF_CAP_S, 0.1 * 2**attempt)
        delays = [backoff_delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4, "jittered"
    assert backoff_delay(10_000, rng) <= BACKOFF_CAP_S


def test_keeps_posts_pending_and_reports_the_error_while_downstream_is_down(tmp_path: Path) -> None:
    settings = unreachable_settings(tmp_path)
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    spool.append([
        SpoolEntry("city-a", "rss", str(n), "", make_post(str(n)).SerializeToString()) for n in range(3)
    ])
    forwarder = Forwarder(settings, spool).start()
    try:
        wait_for(lambda: forwarder.last_error().startswith("Enrich: UNAVAILABLE"))
        time.sleep(0.5)  # a few retries later, nothing was dropped or marked
        stats = spool.stats()
        assert (stats.pending, stats.forwarded, stats.failed) == (3, 0, 0)
    finally:
        started = time.monotonic()
        forwarder.stop()
        assert time.monotonic() - started < 5, "stops while waiting to retry"
    assert [p.seq for p in spool.next_batch(10)] == [1, 2, 3]
    spool.close()


def test_the_service_process_keeps_posts_while_downstream_is_down_and_stops_cleanly(tmp_path: Path) -> None:
    settings = unreachable_settings(tmp_path)
    port = free_port()
    env = {
        "CIVIC_INGESTION_PORT": str(port),
        "CIVIC_SPOOL_PATH": str(settings.spool_path),
        "CIVIC_INFERENCE_TARGET": settings.inference_target,
        "CIVIC_SEARCH_TARGET": settings.search_target,
        "CIVIC_ALERTING_TARGET": settings.alerting_target,
        "CIVIC_RPC_TIMEOUT_S": "2",
    }
    process = spawn(["services.ingestion"], env, tmp_path / "ingestion.log")
    try:
        target = f"127.0.0.1:{port}"
        wait_healthy(target, 60, process=process)
        with grpc.insecure_channel(target) as chan:
            stub = ingestion_pb2_grpc.IngestionServiceStub(chan)
            reply = stub.IngestPosts(
                ingestion_pb2.IngestPostsRequest(posts=[make_post("1"), make_post("2")]), timeout=30
            )
            assert reply.accepted == 2

            def stats() -> ingestion_pb2.GetIngestionStatsResponse:
                return stub.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest(), timeout=10)

            wait_for(lambda: stats().last_error.startswith("Enrich: UNAVAILABLE"))
            assert (stats().pending, stats().forwarded) == (2, 0)
    finally:
        stop_pid(process.pid, timeout_s=20)
    log = (tmp_path / "ingestion.log").read_text()
    assert '"message": "shutting down"' in log and "Traceback" not in log, log[-2000:]
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    assert [post_pb2.Post.FromString(p.payload).id for p in spool.next_batch(10)] == ["1", "2"]
    spool.close()


def test_posts_forwarded_before_the_retention_period_leave_the_spool(tmp_path: Path) -> None:
    settings = unreachable_settings(tmp_path).model_copy(update={"spool_retention_days": 1.0})
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    spool.append([SpoolEntry("city-a", "rss", str(n), "", make_post(str(n)).SerializeToString()) for n in range(4)])
    old, recent, failed, _pending = spool.next_batch(4)
    spool.mark_forwarded([old.seq, recent.seq], {failed.seq: "IndexPosts: mapping conflict"})
    two_days_ago = time.time() - 2 * 86400
    spool._db.execute("UPDATE posts SET finished_at = ? WHERE seq IN (?, ?)", (two_days_ago, old.seq, failed.seq))
    forwarder = Forwarder(settings, spool).start()
    try:
        wait_for(lambda: spool._db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 3)
    finally:
        forwarder.stop(grace_s=1)
    remaining = spool._db.execute("SELECT post_id, status FROM posts ORDER BY seq").fetchall()
    assert remaining == [("1", "forwarded"), ("2", "failed"), ("3", "pending")]
    stats = spool.stats()
    assert (stats.accepted, stats.forwarded, stats.failed, stats.pending) == (4, 2, 1, 1)  # figures keep them
    spool.close()
