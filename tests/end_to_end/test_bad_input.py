"""Hostile input against the running services (tests/fixtures/pipeline.py: real gRPC servers, the
session's Elasticsearch and inference): every post ingestion accepts is one every downstream takes,
what it refuses is refused with the field named, and the read RPCs answer INVALID_ARGUMENT, never
UNKNOWN, for what they cannot serve."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import alerting_pb2, ingestion_pb2, post_pb2, search_pb2
from services.ingestion.spool import SpoolEntry
from tests.fixtures.pipeline import Pipeline, make_post

pytestmark = pytest.mark.slow

CITY = "bad-input-city"
ACCEPTED, REJECTED = ingestion_pb2.POST_OUTCOME_ACCEPTED, ingestion_pb2.POST_OUTCOME_REJECTED
YEAR_RANGE = "must be on or after 1990-01-01 and before 9999-01-01"
FILTER_RANGE = "must be on or after 1970-01-01 and before 9999-01-01"


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline()


def refusal(call: Callable[..., object], request: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as refused:
        call(request, timeout=60)
    return refused.value.code(), refused.value.details()  # type: ignore[attr-defined]


def dated(post_id: str, seconds: int, nanos: int = 0) -> post_pb2.Post:
    post = make_post(CITY, post_id, "Pothole on Main Street")
    post.created_at.seconds, post.created_at.nanos = seconds, nanos
    return post


def stamp(moment: datetime) -> Timestamp:
    found = Timestamp()
    found.FromDatetime(moment)
    return found


def test_dates_no_service_can_store_are_refused_at_ingestion(pipeline: Pipeline) -> None:
    reply = pipeline.ingest([
        dated("before-year-1", -62135596801), dated("year-1", -62135596800), dated("epoch", 0),
        dated("negative-nanos", 1_763_000_000, -1), make_post(CITY, "good", "Pothole on Main Street"),
    ])
    assert [(r.id, r.outcome) for r in reply.results] == [
        ("before-year-1", REJECTED), ("year-1", REJECTED), ("epoch", REJECTED), ("negative-nanos", REJECTED),
        ("good", ACCEPTED)]
    assert [r.reason for r in reply.results[:4]] == [
        f"posts[0].created_at: {YEAR_RANGE}", f"posts[1].created_at: {YEAR_RANGE}",
        f"posts[2].created_at: {YEAR_RANGE}", "posts[3].created_at.nanos: must be 0 to 999,999,999, got -1"]
    stats = pipeline.settled()
    assert (stats.forwarded, stats.failed, stats.last_error) == (1, 0, "")


def test_a_post_an_older_release_accepted_and_search_refuses_is_set_aside(pipeline: Pipeline) -> None:
    """Before the shared checks a year-1 post was accepted; IndexPosts then failed for ever and held
    up every tenant's posts. Spooled as an older release did, it is now a dead letter and the 50
    posts of another tenant behind it are indexed."""
    old = dated("old", -62135596800)
    behind = [make_post("bad-input-other", f"o{n}", f"Library hours cut again, week {n}") for n in range(50)]
    entries = [SpoolEntry(p.tenant, p.channel, p.id, "", p.SerializeToString()) for p in [old, *behind]]
    assert pipeline.forwarder.spool.append(entries) == [True] * 51
    stats = pipeline.settled()
    assert (stats.forwarded, stats.failed) == (50, 1)
    assert pipeline.count("bad-input-other") == 50
    (letter,) = pipeline.ingestion.ListFailedPosts(ingestion_pb2.ListFailedPostsRequest(tenant=CITY), timeout=30).posts
    assert letter.reason == f"IndexPosts: posts[0].post.created_at: {YEAR_RANGE}"


def test_the_downstreams_refuse_what_ingestion_refuses_naming_the_field(pipeline: Pipeline) -> None:
    epoch = post_pb2.EnrichedPost(post=dated("epoch", 1))
    code, details = refusal(pipeline.alerting.EvaluatePosts, alerting_pb2.EvaluatePostsRequest(posts=[epoch]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, f"posts[0].post.created_at: {YEAR_RANGE}")
    huge = make_post(CITY, "huge", "Bus late")
    huge.author.follower_count = 2**63 - 512
    for call, request in [
        (pipeline.search.IndexPosts, search_pb2.IndexPostsRequest(posts=[post_pb2.EnrichedPost(post=huge)])),
        (pipeline.alerting.EvaluatePosts, alerting_pb2.EvaluatePostsRequest(posts=[post_pb2.EnrichedPost(post=huge)])),
    ]:
        assert refusal(call, request) == (
            grpc.StatusCode.INVALID_ARGUMENT, "posts[0].post.author.follower_count: must be a count from 0 to "
                                              "1,000,000,000,000")
    assert pipeline.ingest([huge]).results[0].reason == (
        "posts[0].author.follower_count: must be a count from 0 to 1,000,000,000,000")


@pytest.mark.parametrize(("path", "limit"), [
    ("source", 1024), ("url", 8192), ("language", 35), ("author.id", 256), ("author.name", 256)])
def test_every_string_field_is_bounded(pipeline: Pipeline, path: str, limit: int) -> None:
    post = make_post(CITY, "long", "Bus late")
    target, _, name = path.rpartition(".")
    setattr(getattr(post, target) if target else post, name, "x" * (limit + 1))
    assert pipeline.ingest([post]).results[0].reason == (
        f"posts[0].{path}: must be at most {limit:,} characters, got {limit + 1:,}")


def test_a_17_mib_source_is_refused_not_forwarded(pipeline: Pipeline) -> None:
    """Two such posts used to be accepted and then batched into an Enrich request over the message
    limit, retried for ever."""
    for n in range(2):
        post = make_post(CITY, f"big-{n}", "The road is closed", source="s" * (17 * 1024 * 1024))
        result = pipeline.ingest([post]).results[0]
        assert (result.outcome, result.reason) == (
            REJECTED, "posts[0].source: must be at most 1,024 characters, got 17,825,792")
    assert pipeline.stats().accepted == 0


def test_the_forwarder_sizes_its_batches_by_bytes(make_pipeline: Callable[..., Pipeline]) -> None:
    """Posts of 20,000 two-byte characters: 16 of them (one batch by count) are over the 1 MiB that
    this forwarder may send; batches cut by bytes go through."""
    pipeline = make_pipeline(max_message_bytes=1024 * 1024)
    text = "Автобус снова опоздал на остановке у вокзала. " * 500  # noqa: RUF001 (Cyrillic on purpose)
    posts = [make_post(CITY, f"long-{n}", f"{n} {text}"[:20_000], language="ru") for n in range(40)]
    assert len(posts[0].SerializeToString()) > 30_000
    for start in range(0, 40, 10):
        assert pipeline.ingest(posts[start:start + 10]).accepted == 10
    stats = pipeline.settled()
    assert (stats.forwarded, stats.failed, stats.last_error) == (40, 0, "")
    assert pipeline.count(CITY) == 40


def test_the_largest_counts_are_indexed_and_aggregated(pipeline: Pipeline) -> None:
    post = make_post(CITY, "famous", "The ferry timetable changed without notice")
    post.author.id, post.author.name, post.author.follower_count = "a1", "Famous", 10**12
    post.engagement.likes = post.engagement.shares = post.engagement.replies = 10**12
    assert pipeline.ingest([post]).accepted == 1
    assert pipeline.settled().forwarded == 1
    authors = pipeline.search.Aggregate(search_pb2.AggregateRequest(
        tenant=CITY, dimension=search_pb2.AGGREGATE_DIMENSION_AUTHOR), timeout=30)
    assert [(b.key, b.reach, b.label) for b in authors.buckets] == [("a1", 10**12, "Famous")]


@pytest.mark.parametrize("field", ["tenant", "channel"])
def test_names_are_matched_whole(pipeline: Pipeline, field: str) -> None:
    post = make_post(CITY, "p", "Bus late")
    setattr(post, field, getattr(post, field) + "\n")
    assert pipeline.ingest([post]).results[0].reason.startswith(f"posts[0].{field}: must be 1-")
    code, details = refusal(pipeline.search.Search, search_pb2.SearchRequest(tenant=f"{CITY}\n"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("tenant: must be 1-63")
    code, _ = refusal(pipeline.ingestion.GetIngestionStats, ingestion_pb2.GetIngestionStatsRequest(tenant=f"{CITY}\n"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("text", ["\u200b", "\ufeff\u200b\ufeff", "\u200b \u200d\n\u2060"])
def test_text_of_only_zero_width_characters_is_refused(pipeline: Pipeline, text: str) -> None:
    result = pipeline.ingest([make_post(CITY, "blank", text)]).results[0]
    assert (result.outcome, result.reason) == (REJECTED, "posts[0].text: must not be empty")


def test_volume_over_time_answers_at_most_1000_intervals(pipeline: Pipeline) -> None:
    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    posts = [make_post(CITY, name, "Tram stop flooded") for name in ("old", "middle", "new")]
    for post, at in zip(posts, (-timedelta(hours=1100), -timedelta(hours=500), timedelta(minutes=10)), strict=True):
        post.created_at.FromDatetime(hour + at)
    assert pipeline.search.IndexPosts(search_pb2.IndexPostsRequest(
        posts=[post_pb2.EnrichedPost(post=p) for p in posts]), timeout=60).indexed == 3
    # Up to 10:30, no start: the 1,000 hours before it, of which the last is 10:00-11:00.
    up_to = search_pb2.SearchFilters(created_to=stamp(hour + timedelta(minutes=30)))
    reply = pipeline.search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
        tenant=CITY, interval=search_pb2.TIME_INTERVAL_HOUR, filters=up_to), timeout=60)
    assert (len(reply.buckets), sum(b.count for b in reply.buckets)) == (1000, 2)
    assert reply.buckets[-1].start.ToDatetime(tzinfo=UTC) == hour and reply.buckets[-1].count == 1
    assert reply.buckets[0].start.ToDatetime(tzinfo=UTC) == hour - timedelta(hours=999)
    # 1,000 hours from 09:30 to 09:30 touch 1,001 hours.
    span = search_pb2.SearchFilters(created_from=stamp(hour - timedelta(hours=1000, minutes=30)),
                                    created_to=stamp(hour - timedelta(minutes=30)))
    code, details = refusal(pipeline.search.VolumeOverTime, search_pb2.VolumeOverTimeRequest(
        tenant=CITY, interval=search_pb2.TIME_INTERVAL_HOUR, filters=span))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("filters.created_from: the range holds more")
    span.created_from.CopyFrom(stamp(hour - timedelta(hours=999, minutes=30)))
    reply = pipeline.search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
        tenant=CITY, interval=search_pb2.TIME_INTERVAL_HOUR, filters=span), timeout=60)
    assert (len(reply.buckets), sum(b.count for b in reply.buckets)) == (1000, 1)


@pytest.mark.parametrize(("field", "moment"), [
    ("created_to", Timestamp(seconds=-62135596800 + 86400)),
    ("created_from", Timestamp(seconds=-62135596800)),
    ("created_to", Timestamp(seconds=253402214400)),  # 9999-12-31
    ("created_from", Timestamp(seconds=1_763_000_000, nanos=-5)),
])
def test_extreme_filter_dates_are_invalid_arguments(pipeline: Pipeline, field: str, moment: Timestamp) -> None:
    filters = search_pb2.SearchFilters()
    getattr(filters, field).CopyFrom(moment)
    expected = f"filters.{field}: {FILTER_RANGE}" if moment.nanos == 0 else \
        f"filters.{field}.nanos: must be 0 to 999,999,999, got -5"
    for call, request in [
        (pipeline.search.VolumeOverTime, search_pb2.VolumeOverTimeRequest(tenant=CITY, filters=filters)),
        (pipeline.search.Search, search_pb2.SearchRequest(tenant=CITY, filters=filters)),
        (pipeline.search.Aggregate, search_pb2.AggregateRequest(
            tenant=CITY, filters=filters, dimension=search_pb2.AGGREGATE_DIMENSION_CHANNEL)),
    ]:
        assert refusal(call, request) == (grpc.StatusCode.INVALID_ARGUMENT, expected)


def test_filter_lists_are_bounded_and_named(pipeline: Pipeline) -> None:
    for filters, expected in [
        (search_pb2.SearchFilters(channels=[f"c{n}" for n in range(100_000)]),
         "filters.channels: at most 100 values, got 100,000"),
        (search_pb2.SearchFilters(languages=["en"] * 101), "filters.languages: at most 100 values, got 101"),
        (search_pb2.SearchFilters(topics=["ok", "t" * 257]), "filters.topics[1]: must be at most 256 characters"),
        (search_pb2.SearchFilters(sentiments=[post_pb2.SENTIMENT_LABEL_NEGATIVE] * 101),
         "filters.sentiments: at most 100 values, got 101"),
    ]:
        assert refusal(pipeline.search.Search, search_pb2.SearchRequest(tenant=CITY, filters=filters)) == (
            grpc.StatusCode.INVALID_ARGUMENT, expected)
    fine = search_pb2.SearchFilters(channels=[f"c{n}" for n in range(100)])
    assert pipeline.search.Search(search_pb2.SearchRequest(tenant=CITY, filters=fine), timeout=30).total == 0
