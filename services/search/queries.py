"""Turning the public query language, filters, sort and page token into Elasticsearch request parts.

The query language is parsed by services/common/boolean_query.py (which also names the fields it
may use) and translated by query_language.py; this module builds the filters, sorts and opaque page
tokens around it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import search_pb2
from services.common.boolean_query import MatchAll, parse
from services.common.enum_names import EMOTION_WORDS, SENTIMENT_WORDS
from services.common.errors import InvalidArgument
from services.common.post_validation import EARLIEST_FILTER, LATEST_TIME, check_time
from services.search.mapping import TEXT_FIELDS
from services.search.query_language import to_elasticsearch

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
DEFAULT_BUCKETS = 10
MAX_BUCKETS = 100
# Values of each list of SearchFilters, and characters of each value (far above any name in use).
MAX_FILTER_VALUES = 100
MAX_FILTER_VALUE_CHARS = 256
T = TypeVar("T")
CAP_SEVERITIES = ("extreme", "severe", "moderate", "minor", "unknown")

AGGREGATE_FIELDS = {
    search_pb2.AGGREGATE_DIMENSION_SENTIMENT: "sentiment",
    search_pb2.AGGREGATE_DIMENSION_CHANNEL: "channel",
    search_pb2.AGGREGATE_DIMENSION_LANGUAGE: "language",
    search_pb2.AGGREGATE_DIMENSION_TOPIC: "topics",
    search_pb2.AGGREGATE_DIMENSION_SOURCE: "source",
    search_pb2.AGGREGATE_DIMENSION_EMOTION: "emotion",
}


def text_query(query: str) -> dict[str, Any] | None:
    """The scored clause for a query, or None when the query is empty (match everything)."""
    tree = parse(query)
    return None if isinstance(tree, MatchAll) else to_elasticsearch(tree, TEXT_FIELDS)


def _time(value: Timestamp, field: str) -> str:
    check_time(value, field, EARLIEST_FILTER, LATEST_TIME)
    return value.ToJsonString()


def _values(values: Sequence[T], field: str) -> list[T]:
    """A filter's list, bounded: Elasticsearch would refuse a huge one as a whole query, naming no field."""
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidArgument(field, f"at most {MAX_FILTER_VALUES} values, got {len(values):,}")
    for position, value in enumerate(values):
        if isinstance(value, str) and len(value) > MAX_FILTER_VALUE_CHARS:
            raise InvalidArgument(f"{field}[{position}]", f"must be at most {MAX_FILTER_VALUE_CHARS} characters")
    return list(values)


def filter_clauses(tenant: str, filters: search_pb2.SearchFilters) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [{"term": {"tenant": tenant}}]
    if filters.channels:
        clauses.append({"terms": {"channel": _values(filters.channels, "filters.channels")}})
    if filters.languages:
        clauses.append({"terms": {"language": _values(filters.languages, "filters.languages")}})
    if filters.sentiments:
        unknown = [label for label in _values(filters.sentiments, "filters.sentiments") if label not in SENTIMENT_WORDS]
        if unknown:
            raise InvalidArgument("filters.sentiments", "must be NEGATIVE, NEUTRAL or POSITIVE, not UNSPECIFIED")
        clauses.append({"terms": {"sentiment": [SENTIMENT_WORDS[label] for label in filters.sentiments]}})
    if filters.topics:
        clauses.append({"terms": {"topics": _values(filters.topics, "filters.topics")}})
    if filters.emotions:
        if any(emotion not in EMOTION_WORDS for emotion in _values(filters.emotions, "filters.emotions")):
            raise InvalidArgument("filters.emotions", "must be ANGER, JOY, OPTIMISM or SADNESS, not UNSPECIFIED")
        clauses.append({"terms": {"emotion": [EMOTION_WORDS[emotion] for emotion in filters.emotions]}})
    if filters.offensive_only:
        clauses.append({"term": {"offensive": True}})
    clauses += channel_filters(filters)
    created: dict[str, str] = {}
    if filters.HasField("created_from"):
        created["gte"] = _time(filters.created_from, "filters.created_from")
    if filters.HasField("created_to"):
        created["lt"] = _time(filters.created_to, "filters.created_to")
    if "gte" in created and "lt" in created and filters.created_from.ToDatetime() >= filters.created_to.ToDatetime():
        raise InvalidArgument("filters.created_to", "must be after filters.created_from")
    if created:
        clauses.append({"range": {"created_at": created}})
    if filters.min_reach < 0:
        raise InvalidArgument("filters.min_reach", "must not be negative")
    if filters.min_reach:
        clauses.append({"range": {"reach": {"gte": filters.min_reach}}})
    return clauses


def channel_filters(filters: search_pb2.SearchFilters) -> list[dict[str, Any]]:
    """The filters on what channels say beyond the text: hashtags, sensitive marks, a conversation,
    CAP severities and Open311 states."""
    clauses: list[dict[str, Any]] = []
    if filters.hashtags:
        tags = _values(filters.hashtags, "filters.hashtags")
        clauses.append({"terms": {"hashtags": [tag.lstrip("#").lower() for tag in tags]}})
    if filters.exclude_sensitive:
        marked = [{"term": {"sensitive": True}}, {"exists": {"field": "content_warning"}}]
        clauses.append({"bool": {"must_not": marked}})
    if len(filters.conversation_id) > MAX_FILTER_VALUE_CHARS:
        raise InvalidArgument("filters.conversation_id", f"must be at most {MAX_FILTER_VALUE_CHARS} characters")
    if filters.conversation_id:
        clauses.append({"term": {"conversation_id": filters.conversation_id}})
    if filters.alert_severities:
        unknown = sorted(set(_values(filters.alert_severities, "filters.alert_severities")) - set(CAP_SEVERITIES))
        if unknown:
            allowed = ", ".join(CAP_SEVERITIES)
            raise InvalidArgument("filters.alert_severities", f"must be among {allowed}, got {unknown}")
        clauses.append({"terms": {"official_alert.severity": list(filters.alert_severities)}})
    if filters.service_statuses:
        statuses = _values(filters.service_statuses, "filters.service_statuses")
        clauses.append({"terms": {"service_request.status": [status.lower() for status in statuses]}})
    return clauses


def bool_query(tenant: str, query: str, filters: search_pb2.SearchFilters) -> dict[str, Any]:
    """The whole query: text (scored) and filters (not scored, cached)."""
    body: dict[str, Any] = {"filter": filter_clauses(tenant, filters)}
    matched = text_query(query)
    if matched is not None:
        body["must"] = [matched]
    return {"bool": body}


def sort_clause(order: search_pb2.SortOrder) -> list[dict[str, Any]]:
    """Every order ends on doc_id so that search_after pages never skip or repeat a tie."""
    if order == search_pb2.SORT_ORDER_NEWEST:
        keys = [{"created_at": {"order": "desc", "missing": "_last"}}]
    elif order == search_pb2.SORT_ORDER_REACH:
        keys = [{"reach": {"order": "desc"}}]
    elif order in (search_pb2.SORT_ORDER_RELEVANCE, search_pb2.SORT_ORDER_UNSPECIFIED):
        keys = [{"_score": {"order": "desc"}}, {"created_at": {"order": "desc", "missing": "_last"}}]
    else:
        raise InvalidArgument("sort", f"unknown sort order {order}")
    return [*keys, {"doc_id": {"order": "asc"}}]


def page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
    return requested


def bucket_count(requested: int) -> int:
    if requested == 0:
        return DEFAULT_BUCKETS
    if not 1 <= requested <= MAX_BUCKETS:
        raise InvalidArgument("size", f"must be between 1 and {MAX_BUCKETS} (0 means {DEFAULT_BUCKETS})")
    return requested


def encode_page_token(order: search_pb2.SortOrder, after: list[Any]) -> str:
    """Opaque to clients: the sort order and the last hit's sort values."""
    raw = json.dumps({"sort": int(order), "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, order: search_pb2.SortOrder) -> list[Any] | None:
    if not token:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, token_order = payload["after"], payload["sort"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("page_token", "is not a token returned by a previous search") from exc
    if not isinstance(after, list) or token_order != int(order):
        raise InvalidArgument("page_token", "belongs to a search with a different sort order")
    return after

