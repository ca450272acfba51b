"""The gateway's own rules, without servers: periods, the CX index, tone shares, error sentences,
who the viewer is, and what reaches the browser of a post."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from civic.listening.v1 import post_pb2, search_pb2
from services.common.errors import InvalidArgument
from services.gateway import convert, overview, params
from services.gateway.errors import describe
from services.gateway.upstream import NoViewer, viewer_from_headers

NEWEST = datetime(2026, 11, 15, 23, 41, 7, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_the_period_ends_after_the_newest_post_and_compares_with_the_one_before() -> None:
    week = params.period({}, NEWEST, NOW)
    assert (week.start, week.end, week.interval_name) == (
        datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC), "day")
    assert week.previous_start == datetime(2026, 11, 2, tzinfo=UTC)
    day = params.period({"period": "1d"}, NEWEST, NOW)
    assert (day.start, day.end, day.interval_name) == (
        datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC), "hour")
    assert params.period({"period": "90d"}, None, NOW).interval_name == "day"
    explicit = params.period({"from": "2026-01-01", "to": "2026-07-01"}, NEWEST, NOW)
    assert (explicit.start, explicit.interval_name) == (datetime(2026, 1, 1, tzinfo=UTC), "week")


@pytest.mark.parametrize(("args", "field"), [
    ({"period": "2y"}, "period"),
    ({"interval": "minute"}, "interval"),
    ({"from": "2026-11-10", "to": "2026-11-09"}, "from"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
    ({"period": "90d", "interval": "hour"}, "interval"),
    ({"to": "soon"}, "to"),
])
def test_a_bad_period_is_refused_with_the_field_named(args: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        params.period(args, NEWEST, NOW)
    assert refused.value.field == field


def test_filters_read_every_parameter() -> None:
    filters = params.filters({"channels": "reddit, mastodon", "sentiments": "Negative", "emotions": "anger,sadness",
                              "offensive": "1", "min_reach": "500", "from": "2026-11-13T14:00:00Z"})
    assert list(filters.channels) == ["reddit", "mastodon"]
    assert list(filters.sentiments) == [post_pb2.SENTIMENT_LABEL_NEGATIVE]
    assert list(filters.emotions) == [post_pb2.EMOTION_ANGER, post_pb2.EMOTION_SADNESS]
    assert filters.offensive_only and filters.min_reach == 500
    assert filters.created_from.ToJsonString() == "2026-11-13T14:00:00Z" and not filters.HasField("created_to")
    with pytest.raises(InvalidArgument, match="min_reach: 'many' is not a whole number"):
        params.filters({"min_reach": "many"})
    with pytest.raises(InvalidArgument, match="channels: at most 20 values"):
        params.filters({"channels": ",".join(f"c{n}" for n in range(21))})


def test_the_cx_index_is_net_sentiment_on_0_to_100() -> None:
    def index(negative: int, neutral: int, positive: int) -> float | None:
        return overview.cx_index({"negative": negative, "neutral": neutral, "positive": positive})

    assert (index(10, 0, 0), index(0, 0, 10), index(5, 10, 5), index(0, 0, 0)) == (0.0, 100.0, 50.0, None)
    assert index(3, 1, 1) == 30.0
    assert overview.change(30.0, 42.5) == -12.5 and overview.change(None, 42.5) is None


def test_tone_shares_only_when_posts_carry_tone() -> None:
    empty = dict.fromkeys(overview.COUNTERS, 0)
    assert overview.tone({**empty, "count": 9})["has_tone"] is False
    toned = overview.tone({**empty, "count": 10, "anger": 6, "sadness": 2, "joy": 1, "optimism": 1, "offensive": 3})
    assert toned["has_tone"] and toned["offensive_share"] == pytest.approx(0.3)
    assert {e["key"]: e["share"] for e in toned["emotions"]} == pytest.approx(
        {"anger": 0.6, "joy": 0.1, "optimism": 0.1, "sadness": 0.2})


@pytest.mark.parametrize(("code", "status", "words"), [
    (grpc.StatusCode.INVALID_ARGUMENT, 400, "query: unexpected end at position 12"),
    (grpc.StatusCode.NOT_FOUND, 404, "query: unexpected end at position 12"),
    (grpc.StatusCode.UNAUTHENTICATED, 401, "Your access token was not accepted"),
    (grpc.StatusCode.PERMISSION_DENIED, 403, "You are not allowed to do this"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "The search service is busy"),
    (grpc.StatusCode.UNAVAILABLE, 503, "The search service cannot be reached right now"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "took too long"),
    (grpc.StatusCode.INTERNAL, 502, "The search service failed (internal)"),
])
def test_grpc_errors_become_statuses_and_sentences(code: grpc.StatusCode, status: int, words: str) -> None:
    assert describe("search", code, "query: unexpected end at position 12.")[0] == status
    assert words in describe("search", code, "query: unexpected end at position 12.")[1]


def test_the_viewer_is_one_agency_or_a_token() -> None:
    assert viewer_from_headers("", "city-transit").tenant == "city-transit"
    assert viewer_from_headers("", "city-transit").metadata == ()
    with_token = viewer_from_headers("Bearer abc.def", "")
    assert (with_token.tenant, with_token.metadata) == ("", (("authorization", "Bearer abc.def"),))
    for authorization, tenant, words in [("", "", "Choose an agency"), ("Basic x", "", "Bearer"),
                                         ("", "../other", "not an agency name")]:
        with pytest.raises(NoViewer, match=words):
            viewer_from_headers(authorization, tenant)


def test_posts_reach_the_browser_without_unsafe_links_and_with_tone_only_when_computed() -> None:
    enriched = post_pb2.EnrichedPost(
        post=post_pb2.Post(id="p", channel="reddit", text="flat", display_text="as\nwritten",
                           url="javascript:alert(1)"),
        enrichment=post_pb2.Enrichment(sentiment=post_pb2.SENTIMENT_LABEL_NEGATIVE),
    )
    shown = convert.post(enriched)
    assert (shown["url"], shown["text"], shown["sentiment"], shown["emotion"], shown["created_at"]) == (
        None, "as\nwritten", "negative", None, None)
    enriched.post.url = "https://example.org/synthetic/p"
    enriched.enrichment.emotion = post_pb2.EMOTION_ANGER
    enriched.enrichment.offensive = True
    shown = convert.post(enriched)
    assert (shown["url"], shown["emotion"], shown["offensive"]) == ("https://example.org/synthetic/p", "anger", True)
    bucket = convert.bucket(search_pb2.AggregateBucket(key="mastodon", count=2**40, share=0.5))
    assert bucket["count"] == 2**40 and isinstance(bucket["count"], int)
