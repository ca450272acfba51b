"""Aggregate and VolumeOverTime: breakdowns, share of voice, authors, terms and the volume histogram.

Every breakdown also reports the number of distinct authors (a cardinality aggregation, exact up to
3,000). Top terms are counted over the newest matching posts' term vectors, analyzed with the
index's `civic_terms` analyzer (lower case, stop words of every supported language removed, no
stemming, so the words read as written); significant terms use Elasticsearch's significant_text
against the tenant's whole index as background.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from civic.listening.v1 import search_pb2
from services.common.enum_names import EMOTION_WORDS
from services.common.errors import InvalidArgument
from services.search.queries import AGGREGATE_FIELDS, bool_query, bucket_count

TERM_SAMPLE_POSTS = 500
MIN_TERM_CHARS = 3
MAX_HISTOGRAM_BUCKETS = 1000
UNIQUE_AUTHORS = {"cardinality": {"field": "author.id", "precision_threshold": 3000}}
MISSING_IS_EMPTY: dict[str, Any] = {"ignore_unavailable": True, "allow_no_indices": True}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
# Documents indexed before counts were bounded may hold more than an int64 takes as a double.
_MAX_INT64 = 2**63 - 1

INTERVALS: dict[int, tuple[str, str, timedelta]] = {
    search_pb2.TIME_INTERVAL_HOUR: ("fixed_interval", "1h", timedelta(hours=1)),
    search_pb2.TIME_INTERVAL_DAY: ("calendar_interval", "1d", timedelta(days=1)),
    search_pb2.TIME_INTERVAL_UNSPECIFIED: ("calendar_interval", "1d", timedelta(days=1)),
    search_pb2.TIME_INTERVAL_WEEK: ("calendar_interval", "1w", timedelta(weeks=1)),
}


# Keys of the OFFENSIVE breakdown, by the boolean's key_as_string; posts the tone heads never
# scored have no `offensive` field and fall in neither bucket.
OFFENSIVE_KEYS = {"true": "offensive", "false": "not_offensive"}
EMOTIONS = tuple(EMOTION_WORDS.values())


def _breakdown(dimension: search_pb2.AggregateDimension, size: int) -> dict[str, Any]:
    if dimension in AGGREGATE_FIELDS:
        return {"terms": {"field": AGGREGATE_FIELDS[dimension], "size": size}}
    if dimension == search_pb2.AGGREGATE_DIMENSION_OFFENSIVE:
        return {"terms": {"field": "offensive", "size": 2}}
    if dimension == search_pb2.AGGREGATE_DIMENSION_AUTHOR:
        return {
            "terms": {"field": "author.id", "size": size, "order": [{"reach": "desc"}, {"_key": "asc"}]},
            "aggs": {
                "reach": {"max": {"field": "reach"}},
                "name": {"top_hits": {"size": 1, "_source": ["author.name"], "sort": [{"created_at": "desc"}]}},
            },
        }
    if dimension == search_pb2.AGGREGATE_DIMENSION_SIGNIFICANT_TERM:
        return {
            "sampler": {"shard_size": 2000},
            "aggs": {"terms": {"significant_text": {"field": "text", "size": size, "filter_duplicate_text": True,
                                                    "min_doc_count": 2}}},
        }
    raise InvalidArgument("dimension", "must be SENTIMENT, CHANNEL, LANGUAGE, TOPIC, SOURCE, AUTHOR, TERM, "
                                       "SIGNIFICANT_TERM, EMOTION or OFFENSIVE")


def aggregate(es: Elasticsearch, alias: str, request: search_pb2.AggregateRequest) -> search_pb2.AggregateResponse:
    size = bucket_count(request.size)
    query = bool_query(request.tenant, request.query, request.filters)
    if request.dimension == search_pb2.AGGREGATE_DIMENSION_TERM:
        return _top_terms(es, alias, query, size)
    reply = es.search(index=alias, query=query, size=0, track_total_hits=True,
                      aggs={"by": _breakdown(request.dimension, size), "authors": UNIQUE_AUTHORS},
                      **MISSING_IS_EMPTY)
    total = reply["hits"]["total"]["value"]
    response = search_pb2.AggregateResponse(total=total, unique_authors=_unique_authors(reply))
    by = reply.get("aggregations", {}).get("by", {})
    for bucket in by.get("terms", by).get("buckets", []):
        key = OFFENSIVE_KEYS.get(str(bucket.get("key_as_string")), str(bucket["key"]))
        item = search_pb2.AggregateBucket(key=key, count=bucket["doc_count"],
                                          share=bucket["doc_count"] / total if total else 0.0)
        if "reach" in bucket:
            item.reach = min(int(bucket["reach"]["value"] or 0), _MAX_INT64)
            hits = bucket["name"]["hits"]["hits"]
            item.label = hits[0]["_source"].get("author", {}).get("name", "") if hits else ""
        if "score" in bucket:
            item.score, item.background_count = bucket["score"], bucket["bg_count"]
        response.buckets.append(item)
    return response


def _unique_authors(reply: Any) -> int:
    return int(reply.get("aggregations", {}).get("authors", {}).get("value", 0))


def _top_terms(es: Elasticsearch, alias: str, query: dict[str, Any], size: int) -> search_pb2.AggregateResponse:
    """Document frequency of each word over the newest matching posts: a bounded sample rather than
    fielddata on the text field, which would hold every term of every post in the heap."""
    reply = es.search(index=alias, query=query, size=TERM_SAMPLE_POSTS, source=False, track_total_hits=True,
                      sort=[{"created_at": {"order": "desc", "missing": "_last"}}], aggs={"authors": UNIQUE_AUTHORS},
                      **MISSING_IS_EMPTY)
    hits = reply["hits"]["hits"]
    counts: Counter[str] = Counter()
    if hits:
        vectors = es.mtermvectors(docs=[
            {"_index": hit["_index"], "_id": hit["_id"], "fields": ["text"],
             "per_field_analyzer": {"text": "civic_terms"}, "positions": False, "offsets": False,
             "term_statistics": False, "field_statistics": False}
            for hit in hits
        ])
        for doc in vectors["docs"]:
            terms = doc.get("term_vectors", {}).get("text", {}).get("terms", {})
            counts.update(term for term in terms if len(term) >= MIN_TERM_CHARS and not term.isdigit())
    sampled = len(hits)
    return search_pb2.AggregateResponse(
        total=reply["hits"]["total"]["value"], unique_authors=_unique_authors(reply),
        buckets=[search_pb2.AggregateBucket(key=term, count=count, share=count / sampled)
                 for term, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]],
    )


def interval_start(moment: datetime, step: timedelta) -> datetime:
    """Start of the histogram interval holding moment, aligned as Elasticsearch aligns them in UTC:
    hours and days from the epoch, weeks from a Monday."""
    origin = _MONDAY if step == timedelta(weeks=1) else _EPOCH
    return origin + (moment - origin) // step * step


def _milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _bounds(
    filters: search_pb2.SearchFilters, step: timedelta, oldest: datetime, newest: datetime
) -> tuple[datetime, datetime]:
    """The histogram's range: the filter's ends where given, else the matching posts' own span; at
    most MAX_HISTOGRAM_BUCKETS intervals, counted as aligned (a range of 1,000 days from noon to noon
    touches 1,001 days)."""
    if filters.HasField("created_to"):
        upper = filters.created_to.ToDatetime(UTC)
    else:
        upper = interval_start(newest, step) + step
    earliest = interval_start(upper - _MILLISECOND, step) - step * (MAX_HISTOGRAM_BUCKETS - 1)
    if not filters.HasField("created_from"):
        return max(oldest, earliest), upper
    lower = filters.created_from.ToDatetime(UTC)
    if interval_start(lower, step) < earliest:
        raise InvalidArgument("filters.created_from", f"the range holds more than {MAX_HISTOGRAM_BUCKETS} "
                                                      "intervals; narrow it or choose a longer interval")
    return lower, upper


def volume_over_time(
    es: Elasticsearch, alias: str, request: search_pb2.VolumeOverTimeRequest
) -> search_pb2.VolumeOverTimeResponse:
    if request.interval not in INTERVALS:
        raise InvalidArgument("interval", "must be HOUR, DAY or WEEK")
    query = bool_query(request.tenant, request.query, request.filters)
    kind, length, step = INTERVALS[request.interval]
    filters = request.filters
    if filters.HasField("created_from") and filters.HasField("created_to"):
        _bounds(filters, step, filters.created_from.ToDatetime(UTC), filters.created_to.ToDatetime(UTC))
    span = es.search(index=alias, query=query, size=0, **MISSING_IS_EMPTY,
                     aggs={"oldest": {"min": {"field": "created_at"}}, "newest": {"max": {"field": "created_at"}}})
    found = span.get("aggregations", {})
    if not found or found["newest"]["value"] is None:
        return search_pb2.VolumeOverTimeResponse()
    oldest, newest = (datetime.fromtimestamp(found[end]["value"] / 1000, UTC) for end in ("oldest", "newest"))
    lower, upper = _bounds(request.filters, step, oldest, newest)
    first, last = interval_start(lower, step), interval_start(upper - _MILLISECOND, step)
    # Elasticsearch rounds hard bounds down to an interval start and keeps the intervals before the
    # rounded max: the max is the end of the last interval, else that interval's posts go uncounted.
    histogram: dict[str, Any] = {"field": "created_at", kind: length, "min_doc_count": 0,
                                 "hard_bounds": {"min": _milliseconds(first), "max": _milliseconds(last + step)}}
    if request.filters.HasField("created_from") or request.filters.HasField("created_to"):
        histogram["extended_bounds"] = {"min": _milliseconds(first), "max": _milliseconds(last)}
    reply = es.search(index=alias, query=query, size=0, track_total_hits=True, **MISSING_IS_EMPTY, aggs={
        "volume": {"date_histogram": histogram, "aggs": {
            "sentiment": {"terms": {"field": "sentiment", "size": 3}},
            "emotion": {"terms": {"field": "emotion", "size": len(EMOTIONS)}},
            "offensive": {"filter": {"term": {"offensive": True}}},
        }}
    })
    response = search_pb2.VolumeOverTimeResponse(total=reply["hits"]["total"]["value"])
    for bucket in reply.get("aggregations", {}).get("volume", {}).get("buckets", []):
        split = {b["key"]: b["doc_count"] for b in bucket["sentiment"]["buckets"]}
        emotions = {b["key"]: b["doc_count"] for b in bucket["emotion"]["buckets"]}
        item = search_pb2.VolumeBucket(count=bucket["doc_count"], negative=split.get("negative", 0),
                                       neutral=split.get("neutral", 0), positive=split.get("positive", 0),
                                       offensive=bucket["offensive"]["doc_count"],
                                       **{emotion: emotions.get(emotion, 0) for emotion in EMOTIONS})
        item.start.FromMilliseconds(int(bucket["key"]))
        response.buckets.append(item)
    return response
