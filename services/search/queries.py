"""Turning the public query language, filters, sort and page token into Elasticsearch request parts.

The query language is Lucene's query_string syntax narrowed to what is safe to expose: words,
"phrases", AND/OR/NOT, grouping, field:value on an allow-list, and trailing wildcards only. Leading
wildcards, regular expressions and unknown fields are refused before the cluster sees them, because
they are either very expensive (they scan the whole term dictionary) or reach fields analysts should
not query.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from civic.listening.v1 import search_pb2
from services.common.errors import InvalidArgument
from services.search.documents import SENTIMENT_NAMES
from services.search.mapping import TEXT_FIELDS

MAX_QUERY_CHARS = 1000
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
DEFAULT_BUCKETS = 10
MAX_BUCKETS = 100

# Field names a query may use -> the indexed field they mean.
QUERY_FIELDS = {
    "text": "text",
    "channel": "channel",
    "source": "source",
    "language": "language",
    "sentiment": "sentiment",
    "topic": "topic",
    "author": "author.name",
    "author.name": "author.name",
    "author.id": "author.id",
    "near_duplicate": "near_duplicate",
}

AGGREGATE_FIELDS = {
    search_pb2.AGGREGATE_DIMENSION_SENTIMENT: "sentiment",
    search_pb2.AGGREGATE_DIMENSION_CHANNEL: "channel",
    search_pb2.AGGREGATE_DIMENSION_LANGUAGE: "language",
    search_pb2.AGGREGATE_DIMENSION_TOPIC: "topic",
    search_pb2.AGGREGATE_DIMENSION_SOURCE: "source",
}

_PHRASE = re.compile(r'"(?:\\.|[^"\\])*"')
_FIELD_PREFIX = re.compile(r"(?<![\w.\\])([A-Za-z_][\w.]*)\s*:")
_TERM = re.compile(r"[^\s()\"]+")


def _check_query(query: str) -> str:
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument("query", f"at most {MAX_QUERY_CHARS} characters, got {len(query)}")
    if query.count('"') % 2:
        raise InvalidArgument("query", "has an unterminated \"phrase\"")
    outside_phrases = _PHRASE.sub(" ", query)
    if "/" in outside_phrases:
        raise InvalidArgument("query", "regular expressions (/.../) are not allowed; quote text containing '/'")
    for match in _FIELD_PREFIX.finditer(outside_phrases):
        if match.group(1) not in QUERY_FIELDS:
            allowed = ", ".join(sorted(QUERY_FIELDS))
            raise InvalidArgument("query", f"unknown field '{match.group(1)}'; fields allowed: {allowed}")
    for term in _TERM.findall(_FIELD_PREFIX.sub(" ", outside_phrases)):
        stripped = term.lstrip("+-!")
        if stripped[:1] in {"*", "?"}:
            raise InvalidArgument("query", f"leading wildcards are not allowed ('{term}')")
        if re.search(r"[*?][^*?]", stripped):
            raise InvalidArgument("query", f"wildcards are allowed at the end of a word only ('{term}')")
    return query


def _rewrite_fields(query: str) -> str:
    """Maps friendly field names (author:) onto indexed ones (author.name:), leaving phrases alone."""
    pieces, last = [], 0
    for phrase in _PHRASE.finditer(query):
        pieces.append(_FIELD_PREFIX.sub(lambda m: f"{QUERY_FIELDS[m.group(1)]}:", query[last:phrase.start()]))
        pieces.append(phrase.group(0))
        last = phrase.end()
    pieces.append(_FIELD_PREFIX.sub(lambda m: f"{QUERY_FIELDS[m.group(1)]}:", query[last:]))
    return "".join(pieces)


def text_query(query: str) -> dict[str, Any] | None:
    """The query_string clause for a query, or None when the query is empty (match everything)."""
    if not query.strip():
        return None
    return {
        "query_string": {
            "query": _rewrite_fields(_check_query(query)),
            "fields": TEXT_FIELDS,
            "default_operator": "AND",
            "allow_leading_wildcard": False,
            "analyze_wildcard": False,
            "max_determinized_states": 2000,
            "lenient": True,
        }
    }


def filter_clauses(tenant: str, filters: search_pb2.SearchFilters) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [{"term": {"tenant": tenant}}]
    if filters.channels:
        clauses.append({"terms": {"channel": list(filters.channels)}})
    if filters.languages:
        clauses.append({"terms": {"language": list(filters.languages)}})
    if filters.sentiments:
        unknown = [label for label in filters.sentiments if label not in SENTIMENT_NAMES]
        if unknown:
            raise InvalidArgument("filters.sentiments", "must be NEGATIVE, NEUTRAL or POSITIVE, not UNSPECIFIED")
        clauses.append({"terms": {"sentiment": [SENTIMENT_NAMES[label] for label in filters.sentiments]}})
    if filters.topics:
        clauses.append({"terms": {"topic": list(filters.topics)}})
    created: dict[str, str] = {}
    if filters.HasField("created_from"):
        created["gte"] = filters.created_from.ToJsonString()
    if filters.HasField("created_to"):
        created["lt"] = filters.created_to.ToJsonString()
    if "gte" in created and "lt" in created and filters.created_from.ToDatetime() >= filters.created_to.ToDatetime():
        raise InvalidArgument("filters.created_to", "must be after filters.created_from")
    if created:
        clauses.append({"range": {"created_at": created}})
    if filters.min_reach < 0:
        raise InvalidArgument("filters.min_reach", "must not be negative")
    if filters.min_reach:
        clauses.append({"range": {"reach": {"gte": filters.min_reach}}})
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


def aggregate_field(dimension: search_pb2.AggregateDimension) -> str:
    if dimension not in AGGREGATE_FIELDS:
        raise InvalidArgument("dimension", "must be SENTIMENT, CHANNEL, LANGUAGE, TOPIC or SOURCE")
    return AGGREGATE_FIELDS[dimension]


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

