"""IngestionService over real gRPC: per-post results, duplicates, capacity, batch limits, stats."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc, post_pb2
from services.common.settings import Settings
from services.devstack.launch import is_healthy
from services.ingestion.server import SERVICE_NAME, build_server
from services.ingestion.service import Ingestion
from services.ingestion.spool import SqliteSpool

ACCEPTED = ingestion_pb2.POST_OUTCOME_ACCEPTED
REJECTED = ingestion_pb2.POST_OUTCOME_REJECTED
DUPLICATE = ingestion_pb2.POST_OUTCOME_DUPLICATE
CAMPAIGN = (
    "Stop the new highway through Riverside park now! Sign the petition and tell the council to vote "
    "no on Tuesday."
)


def make_post(
    post_id: str, text: str = "The bins on Elm street were not collected again.", **fields: Any
) -> post_pb2.Post:
    post = post_pb2.Post(**{"id": post_id, "tenant": "city-a", "channel": "mastodon", "text": text, **fields})
    post.created_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    return post


class Running:
    """A started ingestion server on a free port, with its spool, and a client stub."""

    def __init__(self, settings: Settings, last_error: str = "") -> None:
        self.spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
        self.server = build_server(settings, Ingestion(settings, self.spool, lambda: last_error), port=0).start()
        self.target = f"127.0.0.1:{self.server.port}"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = ingestion_pb2_grpc.IngestionServiceStub(self.channel)

    def ingest(self, *posts: post_pb2.Post) -> ingestion_pb2.IngestPostsResponse:
        return self.stub.IngestPosts(ingestion_pb2.IngestPostsRequest(posts=posts), timeout=30)

    def stats(self, tenant: str = "") -> ingestion_pb2.GetIngestionStatsResponse:
        return self.stub.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest(tenant=tenant), timeout=10)

    def stored(self) -> list[post_pb2.Post]:
        return [post_pb2.Post.FromString(p.payload) for p in self.spool.next_batch(10_000)]

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0)
        self.spool.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def factory(last_error: str = "", **overrides: Any) -> Running:
        settings = Settings(spool_path=tmp_path / "spool.sqlite3", **overrides)
        running = Running(settings, last_error)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.close()


@pytest.fixture
def service(start: Callable[..., Running]) -> Running:
    return start()


def test_serves_health_for_the_service(service: Running) -> None:
    assert is_healthy(service.target, SERVICE_NAME)


def test_mixed_batch_keeps_the_good_posts_and_explains_the_bad(service: Running) -> None:
    bad_geo = make_post("geo")
    bad_geo.geo.lat = 123.0
    reply = service.ingest(
        make_post("ok-1"),
        make_post("empty", text="   "),
        make_post("bad-tenant", tenant="City A"),
        bad_geo,
        make_post("ok-2", text="Mail me at jane@example.org or call 555-123-4567 about the  permit."),
    )
    assert [(r.id, r.outcome) for r in reply.results] == [
        ("ok-1", ACCEPTED), ("empty", REJECTED), ("bad-tenant", REJECTED), ("geo", REJECTED), ("ok-2", ACCEPTED),
    ]
    assert reply.results[1].reason == "posts[1].text: must not be empty"
    assert reply.results[2].reason.startswith("posts[2].tenant: ")
    assert reply.results[3].reason == "posts[3].geo.lat: must be between -90 and 90"
    assert (reply.accepted, reply.rejected, reply.duplicates) == (2, 3, 0)

    stored = service.stored()
    assert [p.id for p in stored] == ["ok-1", "ok-2"]
    assert stored[1].text == "Mail me at [EMAIL] or call [PHONE] about the permit."
    assert stored[1].redactions == 2
    assert stored[0].language == "en" and 0 < stored[0].language_confidence <= 1


def test_exact_duplicates_are_reported_and_not_stored(service: Running) -> None:
    assert service.ingest(make_post("a"), make_post("b")).accepted == 2
    reply = service.ingest(make_post("a", text="edited text of the same post id"), make_post("c"))
    assert [r.outcome for r in reply.results] == [DUPLICATE, ACCEPTED]
    assert reply.duplicates == 1
    assert [p.text for p in service.stored() if p.id == "a"] == ["The bins on Elm street were not collected again."]
    other_channel = make_post("a", channel="reddit")
    assert service.ingest(other_channel).accepted == 1, "the key is (tenant, channel, id)"


def test_copy_paste_campaigns_are_marked_not_dropped(service: Running) -> None:
    service.ingest(make_post("c1", CAMPAIGN, author=post_pb2.Author(id="alice")))
    reply = service.ingest(
        make_post("c2", CAMPAIGN.replace("now!", "today!"), author=post_pb2.Author(id="bob")),
        make_post("c3", CAMPAIGN, author=post_pb2.Author(id="alice")),
        make_post("other", author=post_pb2.Author(id="carol")),
    )
    assert reply.accepted == 3
    assert {p.id: p.near_duplicate for p in service.stored()} == {
        "c1": False, "c2": True, "c3": True, "other": False,
    }


def test_near_duplicate_memory_is_rebuilt_from_the_spool(start: Callable[..., Running]) -> None:
    first = start()
    first.ingest(make_post("c1", CAMPAIGN, author=post_pb2.Author(id="alice")))
    first.close()
    second = start()
    second.ingest(make_post("c2", CAMPAIGN, author=post_pb2.Author(id="bob")))
    assert {p.id: p.near_duplicate for p in second.stored()} == {"c1": False, "c2": True}


def test_a_full_spool_answers_resource_exhausted_and_keeps_nothing(start: Callable[..., Running]) -> None:
    service = start(spool_max_pending=2)
    assert service.ingest(make_post("a"), make_post("b")).accepted == 2
    with pytest.raises(grpc.RpcError) as caught:
        service.ingest(make_post("c"), make_post("d"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [p.id for p in service.stored()] == ["a", "b"]
    assert service.stats().accepted == 2


@pytest.mark.parametrize("count", [0, 4])
def test_batch_size_is_limited(start: Callable[..., Running], count: int) -> None:
    service = start(max_batch_posts=3)
    with pytest.raises(grpc.RpcError) as caught:
        service.ingest(*(make_post(str(n)) for n in range(count)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("posts: ")
    assert service.stats().accepted == 0


def test_stats_count_everything_since_the_spool_was_created(start: Callable[..., Running]) -> None:
    service = start(last_error="Enrich: UNAVAILABLE: connection refused")
    service.ingest(make_post("a"), make_post("b"), make_post("bad", text=""))
    service.ingest(make_post("a"))
    stats = service.stats()
    assert (stats.accepted, stats.forwarded, stats.pending, stats.rejected, stats.duplicates) == (2, 0, 2, 1, 1)
    assert stats.last_error == "Enrich: UNAVAILABLE: connection refused"


def test_stats_of_one_tenant_leave_out_the_others_and_the_forwarder_error(start: Callable[..., Running]) -> None:
    service = start(last_error="IndexPosts: INVALID_ARGUMENT: posts[0] of city-b")
    service.ingest(make_post("a1"), make_post("b1", tenant="city-b"), make_post("b2", tenant="city-b"),
                   make_post("bad", tenant="city-b", text=""))
    refused = next(p for p in service.spool.next_batch(10) if post_pb2.Post.FromString(p.payload).id == "b2")
    service.spool.mark_forwarded([], {refused.seq: "IndexPosts: mapping conflict"})
    a, b = service.stats("city-a"), service.stats("city-b")
    assert (a.tenant, a.accepted, a.pending, a.failed, a.rejected, a.last_error) == ("city-a", 1, 1, 0, 0, "")
    assert (b.tenant, b.accepted, b.pending, b.failed, b.rejected, b.last_error) == ("city-b", 2, 1, 1, 1, "")
    everyone = service.stats()
    assert (everyone.tenant, everyone.accepted, everyone.failed, everyone.rejected) == ("", 3, 1, 1)
    assert everyone.last_error.startswith("IndexPosts: INVALID_ARGUMENT")
    with pytest.raises(grpc.RpcError) as caught:
        service.stats("City A")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("tenant: ")
