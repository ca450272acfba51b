"""Posts ingested here reach a search hit through real inference, search and alerting processes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.common.settings import Settings
from services.ingestion.forwarder import Forwarder
from services.ingestion.service import Ingestion
from services.ingestion.spool import SqliteSpool
from tests.ingestion.helpers import TENANT

pytestmark = pytest.mark.slow


def make_post(post_id: str, text: str, author: str) -> post_pb2.Post:
    post = post_pb2.Post(
        id=post_id, tenant=TENANT, channel="webhook", text=text, author=post_pb2.Author(id=author)
    )
    post.created_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=10))
    return post


def test_posts_go_all_the_way_to_a_search_hit(downstream: Settings) -> None:
    spool = SqliteSpool(downstream.spool_path, downstream.spool_max_pending)
    ingestion = Ingestion(downstream, spool)
    forwarder = Forwarder(downstream, spool).start()
    try:
        posts = [
            make_post("leak", "Huge water leak on Birch Road!\n\n\n\nCall me  at 555-123-4567 for details.", "a"),
            *(make_post(f"other-{n}", f"Library opening hours changed for branch {n} this week.", f"b{n}")
              for n in range(12)),
        ]
        reply = ingestion.ingest(posts)
        assert reply.accepted == len(posts)
        deadline = time.monotonic() + 180
        while (stats := ingestion.stats()).pending and time.monotonic() < deadline:
            time.sleep(0.5)
        assert (stats.pending, stats.forwarded, stats.last_error) == (0, len(posts), "")
    finally:
        forwarder.stop()
        spool.close()

    with grpc.insecure_channel(downstream.search_target) as chan:
        hits = search_pb2_grpc.SearchServiceStub(chan).Search(
            search_pb2.SearchRequest(tenant=TENANT, query="water leak"), timeout=30
        ).hits
    assert [hit.post.post.id for hit in hits] == ["leak"]
    found = hits[0].post
    assert found.post.text == "Huge water leak on Birch Road!\n\nCall me at [PHONE] for details."
    assert found.post.display_text == "Huge water leak on Birch Road!\n\n\n\nCall me  at [PHONE] for details."
    assert found.post.language == "en"
    assert found.enrichment.sentiment != post_pb2.SENTIMENT_LABEL_UNSPECIFIED
