"""A post its author deletes leaves everything within a poll, through real processes: a Bluesky source
followed over a local Jetstream, the ingestion spool and forwarder, real inference, search and alerting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from civic.listening.v1 import (
    alerting_pb2,
    alerting_pb2_grpc,
    ingestion_pb2,
    post_pb2,
    search_pb2,
    search_pb2_grpc,
)
from services.common.settings import Settings
from services.ingestion.forwarder import Forwarder
from services.ingestion.scheduler import Scheduler
from services.ingestion.service import Ingestion
from services.ingestion.sources import SourceStore
from services.ingestion.spool import SqliteSpool
from tests.fixtures.channel_servers import JetstreamServer, jetstream_commit
from tests.ingestion.helpers import TENANT

pytestmark = pytest.mark.slow


def wait(what: str, condition: Callable[[], Any], timeout_s: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout_s:.0f}s: {what}")
        time.sleep(0.2)
    return value


def report(time_us: int, rkey: str, did: str, text: str) -> dict[str, Any]:
    event = jetstream_commit(time_us, rkey, text)
    event["did"] = did
    event["commit"]["record"]["createdAt"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return event


def test_a_deleted_post_leaves_search_and_the_spool_and_alerts_keep_their_count(
    downstream: Settings, jetstream_server: JetstreamServer
) -> None:
    settings = downstream.model_copy(update={"source_poll_tick_s": 0.2})
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    store = SourceStore(settings.spool_path)
    ingestion = Ingestion(settings, spool)
    forwarder = Forwarder(settings, spool).start()
    scheduler = Scheduler(settings, store, ingestion.ingest, ingestion.delete).start()
    search_channel = grpc.insecure_channel(settings.search_target)
    alerting_channel = grpc.insecure_channel(settings.alerting_target)
    search = search_pb2_grpc.SearchServiceStub(search_channel)
    alerting = alerting_pb2_grpc.AlertingServiceStub(alerting_channel)
    try:
        alerting.PutRule(alerting_pb2.PutRuleRequest(rule=alerting_pb2.Rule(
            tenant=TENANT, id="bus-reports", kind=alerting_pb2.RULE_KIND_QUERY_MATCH, query="bus", threshold=3,
            window_seconds=3600)), timeout=30)
        jetstream_server.events = [
            report(7000, "3kbus1", "did:plc:ann", "The number 12 bus skipped our stop again, third time this week"),
            report(7001, "3kbus2", "did:plc:bob", "Bus 12 driver waved but did not stop at Elm"),
            report(7002, "3kbus3", "did:plc:cy", "Is the 12 bus on a detour today? Nobody came"),
        ]
        store.create(ingestion_pb2.SourceSpec(tenant=TENANT, name="sky", kind="bluesky", url=jetstream_server.url,
                                              params={"keywords": "bus", "checkpoint_s": "0.2"}))

        def found() -> list[str]:
            try:
                hits = search.Search(search_pb2.SearchRequest(tenant=TENANT, query="bus"), timeout=30).hits
            except grpc.RpcError as exc:  # the tenant's index is being created: its shard is not there yet
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                return []
            return sorted(hit.post.post.id.rsplit("/", 1)[1] for hit in hits)

        assert wait("three posts indexed", lambda: found() == ["3kbus1", "3kbus2", "3kbus3"])
        alert = wait("the alert", lambda: next(iter(alerting.ListAlerts(
            alerting_pb2.ListAlertsRequest(tenant=TENANT), timeout=30).alerts), None))
        assert alert.post_count == 3
        deleted_id = "at://did:plc:ann/app.bsky.feed.post/3kbus1"

        jetstream_server.push(jetstream_commit(7003, "3kbus1", "", "delete") | {"did": "did:plc:ann"})
        asked = time.monotonic()
        wait("the deleted post gone from search", lambda: found() == ["3kbus2", "3kbus3"], timeout_s=60)
        within_s = time.monotonic() - asked
        with pytest.raises(grpc.RpcError) as gone:
            search.GetPost(search_pb2.GetPostRequest(tenant=TENANT, channel="bluesky", id=deleted_id), timeout=30)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        count = search.Count(search_pb2.CountRequest(tenant=TENANT, query="skipped"), timeout=30).count
        assert count == 0

        # The spool keeps only a tombstone, counted; nothing waits to be removed any more.
        payload = spool._db.execute("SELECT payload FROM posts WHERE post_id = ?", (deleted_id,)).fetchone()[0]
        assert post_pb2.Post.FromString(payload) == post_pb2.Post(id=deleted_id, tenant=TENANT, channel="bluesky")
        stats = wait("the removal done", lambda: (s := ingestion.stats(TENANT)).deletions_pending == 0 and s)
        assert (stats.deleted, stats.accepted, stats.pending) == (1, 3, 0)

        # The alert keeps its count and its example ids; the text behind the deleted one is gone.
        (after,) = alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=TENANT), timeout=30).alerts
        assert after.id == alert.id and after.post_count == 3
        assert list(after.sample_post_ids) == list(alert.sample_post_ids)
        assert "skipped our stop" not in str(after)
    finally:
        scheduler.stop()
        forwarder.stop()
        search_channel.close()
        alerting_channel.close()
        store.close()
        spool.close()
    assert within_s < 30, f"the deletion took {within_s:.1f}s to reach search"
