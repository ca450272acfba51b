"""The Overview page's figures: volume, sentiment and tone over a period against the period before,
share of voice, emerging terms, and a CX index per topic.

The CX index is net sentiment on a 0-100 scale, 50 + 50 x (positive - negative) / posts: 0 when
every post is negative, 50 when praise and complaints balance, 100 when every post is positive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from civic.listening.v1 import search_pb2
from services.gateway import convert, params
from services.gateway.upstream import Upstreams, Viewer

COUNTERS = ("count", "negative", "neutral", "positive", "anger", "joy", "optimism", "sadness", "offensive")
EMOTIONS = ("anger", "joy", "optimism", "sadness")
TOPICS_SHOWN = 6
CHANNELS_SHOWN = 8
TERMS_SHOWN = 12


def cx_index(totals: Mapping[str, int]) -> float | None:
    """Net sentiment on 0-100 of the labelled posts; None without any."""
    labelled = totals["negative"] + totals["neutral"] + totals["positive"]
    if labelled == 0:
        return None
    return round(50.0 + 50.0 * (totals["positive"] - totals["negative"]) / labelled, 1)


def sums(buckets: Any) -> dict[str, int]:
    return {name: sum(getattr(b, name) for b in buckets) for name in COUNTERS}


def change(current: float | None, previous: float | None) -> float | None:
    return None if current is None or previous is None else round(current - previous, 1)


def tone(totals: Mapping[str, int]) -> dict[str, Any]:
    """Emotion shares and the offensive share, or has_tone false when no post carries tone."""
    with_emotion = sum(totals[name] for name in EMOTIONS)
    return {
        "has_tone": with_emotion > 0,
        "emotions": [{"key": name, "count": totals[name], "share": totals[name] / with_emotion if with_emotion else 0}
                     for name in EMOTIONS],
        "offensive": totals["offensive"],
        "offensive_share": totals["offensive"] / with_emotion if with_emotion else None,
    }


@dataclass(frozen=True)
class Scope:
    """One tenant's query over one window: what every call of the Overview shares."""

    viewer: Viewer
    query: str
    timeout_s: float

    def filters(self, start: datetime, end: datetime, topic: str = "") -> search_pb2.SearchFilters:
        found = search_pb2.SearchFilters(topics=[topic] if topic else [])
        found.created_from.FromDatetime(start)
        found.created_to.FromDatetime(end)
        return found

    def call(self) -> dict[str, Any]:
        return {"metadata": self.viewer.metadata, "timeout": self.timeout_s}


async def newest_post(upstreams: Upstreams, scope: Scope) -> datetime | None:
    reply = await upstreams.search.Search(
        search_pb2.SearchRequest(tenant=scope.viewer.tenant, query=scope.query, page_size=1,
                                 sort=search_pb2.SORT_ORDER_NEWEST), **scope.call())
    return reply.hits[0].post.post.created_at.ToDatetime(tzinfo=UTC) if reply.hits else None


async def build(upstreams: Upstreams, viewer: Viewer, args: Mapping[str, str], now: datetime) -> dict[str, Any]:
    scope = Scope(viewer, params.text(args, "q"), upstreams.timeout_s)
    newest = None if args.get("to") else await newest_post(upstreams, scope)
    period = params.period(args, newest, now)
    search, tenant = upstreams.search, viewer.tenant

    async def volume(start: datetime, end: datetime, topic: str = "") -> list[Any]:
        """The buckets of [start, end)."""
        reply = await search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
            tenant=tenant, query=scope.query, filters=scope.filters(start, end, topic), interval=period.interval,
        ), **scope.call())
        return list(reply.buckets)

    def aggregate(dimension: search_pb2.AggregateDimension, size: int) -> Any:
        return search.Aggregate(search_pb2.AggregateRequest(
            tenant=tenant, query=scope.query, filters=scope.filters(period.start, period.end),
            dimension=dimension, size=size,
        ), **scope.call())

    current, previous, channels, terms, topics = await asyncio.gather(
        volume(period.start, period.end),
        volume(period.previous_start, period.start),
        aggregate(search_pb2.AGGREGATE_DIMENSION_CHANNEL, CHANNELS_SHOWN),
        aggregate(search_pb2.AGGREGATE_DIMENSION_SIGNIFICANT_TERM, TERMS_SHOWN),
        aggregate(search_pb2.AGGREGATE_DIMENSION_TOPIC, TOPICS_SHOWN),
    )
    names = [b.key for b in topics.buckets if b.key]
    per_topic = await asyncio.gather(*(
        coroutine for name in names
        for coroutine in (volume(period.start, period.end, name), volume(period.previous_start, period.start, name))
    ))
    now_totals, before_totals = sums(current), sums(previous)
    return {
        "period": {"from": convert.iso(period.start), "to": convert.iso(period.end), "interval": period.interval_name,
                   "previous_from": convert.iso(period.previous_start)},
        "totals": {
            "posts": now_totals["count"], "previous_posts": before_totals["count"],
            "unique_authors": channels.unique_authors,
            "negative_share": now_totals["negative"] / now_totals["count"] if now_totals["count"] else None,
            "previous_negative_share":
                before_totals["negative"] / before_totals["count"] if before_totals["count"] else None,
            "cx": cx_index(now_totals), "previous_cx": cx_index(before_totals),
        },
        "volume": [
            {"start": convert.when(b.start), **{name: getattr(b, name) for name in COUNTERS}} for b in current
        ],
        "tone": tone(now_totals),
        "channels": [convert.bucket(b) for b in channels.buckets],
        "emerging_terms": [convert.bucket(b) for b in terms.buckets],
        "topics": [topic_row(name, per_topic[2 * i], per_topic[2 * i + 1]) for i, name in enumerate(names)],
    }


def topic_row(name: str, current: list[Any], previous: list[Any]) -> dict[str, Any]:
    """One topic's CX index per interval, over the period and over the period before."""
    totals = sums(current)
    index, before = cx_index(totals), cx_index(sums(previous))
    return {
        "topic": name,
        "posts": totals["count"],
        "cx": index,
        "previous_cx": before,
        "change": change(index, before),
        "series": [{"start": convert.when(b.start), "count": b.count, "cx": cx_index(sums([b]))}
                   for b in current],
    }
