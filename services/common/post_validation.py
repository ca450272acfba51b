"""What a valid post is, for every service that receives one.

Ingestion accepts a post only if every downstream will take it: search (IndexPosts) and alerting
(EvaluatePosts) check the posts they receive with `check_post`, and ingestion runs the same check on
the normalized post it is about to spool, on top of its own intake rules (services/ingestion/
normalize.py). So an accepted post never comes back from a downstream as INVALID_ARGUMENT, nor fails
further on: a date that Elasticsearch or datetime cannot hold, a count that overflows an
aggregation, a keyword too long to index, a request too large to send.

The checks walk the message, so a field added to Post is bounded from the start: every string has a
length limit (MAX_CHARS, else DEFAULT_MAX_CHARS), every integer is a count (0 to MAX_COUNT), every
float is finite, every timestamp is a storable date, every repeated field has at most MAX_ITEMS
values. Lengths are in characters (code points), as the proto comments state them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import post_pb2
from services.common.errors import InvalidArgument
from services.common.validation import require_channel, require_tenant

# The default of CIVIC_MAX_TEXT_CHARS: text and display_text follow the setting, the others are fixed.
MAX_TEXT_CHARS = 20_000
TEXT_FIELDS = ("text", "display_text")
MAX_CHARS: dict[str, int] = {
    "id": 256,
    # Keywords: Elasticsearch leaves longer values unindexed (ignore_above 1,024), so they could
    # not be searched, filtered or counted.
    "source": 1024,
    "author.id": 256,
    "author.name": 256,
    # RFC 5646 asks for tags of up to 35 characters to be supported; ingestion keeps the first subtag.
    "language": 35,
    # Stored, never indexed; long tracking links are common, a whole document in a link is not.
    "url": 8192,
    # What channels say beyond the text (services/ingestion/post_fields.py fits connectors' posts
    # into these): threading ids as long as ids; Mastodon allows 1,500 characters of media
    # description and Bluesky 2,000; links are keywords indexed up to 2,048.
    "parent_id": 256,
    "root_id": 256,
    "conversation_id": 256,
    "content_warning": 1000,
    "hashtags": 100,
    "mentions": 256,
    "media.type": 16,
    "media.url": 2048,
    "media.alt_text": 2000,
    "links": 2048,
    "sender_languages": 35,
    "categories": 200,
    "service_request.status": 32,
    "service_request.service_code": 100,
    "service_request.service_name": 200,
    "service_request.agency": 200,
    "service_request.address": 500,
    "official_alert.event": 200,
    "official_alert.severity": 16,
    "official_alert.urgency": 16,
    "official_alert.certainty": 16,
    "official_alert.area": 1000,
}
# Strings without a limit of their own (tenant and channel are held shorter by their patterns).
DEFAULT_MAX_CHARS = 1024
MAX_ITEMS = 100
# Counts (followers, likes, shares, replies): 1,000 times the largest audience of any account today,
# and small enough that the sum of a million posts' counts stays within int64 and a double holds
# each exactly (Elasticsearch aggregates longs as doubles).
MAX_COUNT = 10**12
# Before any post of a channel this product reads, and after the sentinel dates of broken clients
# (0, -1, the year 1); alerting counts posts into event-time windows from it.
EARLIEST_POST = datetime(1990, 1, 1, tzinfo=UTC)
# Timestamp ends with the year 9999; the last year is kept free so that adding an interval or a
# period to any accepted time still gives a date.
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)
# Filters and periods may start before the first post, but not before the epoch.
EARLIEST_FILTER = datetime(1970, 1, 1, tzinfo=UTC)
_RANGES: dict[str, tuple[float, float]] = {
    "language_confidence": (0.0, 1.0),
    "geo.lat": (-90.0, 90.0),
    "geo.lon": (-180.0, 180.0),
}
_INTEGERS = frozenset({
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
})
_FLOATS = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def check_time(stamp: Timestamp, field: str, earliest: datetime = EARLIEST_FILTER,
               latest: datetime = LATEST_TIME) -> datetime:
    """The time as an aware datetime, or InvalidArgument when it is malformed or out of range.

    Compared in seconds first: a Timestamp beyond datetime's range must be refused, not overflow.
    """
    if not 0 <= stamp.nanos <= 999_999_999:
        raise InvalidArgument(f"{field}.nanos", f"must be 0 to 999,999,999, got {stamp.nanos}")
    if not earliest.timestamp() <= stamp.seconds < latest.timestamp():
        raise InvalidArgument(field, f"must be on or after {day(earliest)} and before {day(latest)}")
    return stamp.ToDatetime(tzinfo=UTC)


def check_post(post: post_pb2.Post, field: str, max_text_chars: int = MAX_TEXT_CHARS) -> None:
    """Raises InvalidArgument naming `field`.<sub-field> for the first problem of the post.

    created_at may be unset here (search keeps undated posts); alerting and ingestion require it.
    """
    if not post.id:
        raise InvalidArgument(f"{field}.id", "must not be empty")
    require_tenant(post.tenant, f"{field}.tenant")
    require_channel(post.channel, f"{field}.channel")
    _check_message(post, f"{field}.", "", max_text_chars)


def require_created_at(post: post_pb2.Post, field: str) -> datetime:
    """The post's event time, which alerting windows and ingestion require."""
    if not post.HasField("created_at"):
        raise InvalidArgument(f"{field}.created_at", "must be set")
    return check_time(post.created_at, f"{field}.created_at", EARLIEST_POST)


def _limit(path: str, max_text_chars: int) -> int:
    return max_text_chars if path in TEXT_FIELDS else MAX_CHARS.get(path, DEFAULT_MAX_CHARS)


def _check_message(message: Message, prefix: str, path: str, max_text_chars: int) -> None:
    for descriptor, value in message.ListFields():
        name = f"{path}{descriptor.name}"
        values = value if descriptor.is_repeated else [value]
        if len(values) > MAX_ITEMS:
            raise InvalidArgument(f"{prefix}{name}", f"must hold at most {MAX_ITEMS} values, got {len(values)}")
        for item in values:
            _check_value(descriptor, item, prefix, name, max_text_chars)


def _check_value(descriptor: FieldDescriptor, value: object, prefix: str, name: str, max_text_chars: int) -> None:
    where = f"{prefix}{name}"
    kind = descriptor.type
    if kind == FieldDescriptor.TYPE_STRING:
        assert isinstance(value, str)
        limit = _limit(name, max_text_chars)
        if len(value) > limit:
            raise InvalidArgument(where, f"must be at most {limit:,} characters, got {len(value):,}")
    elif kind == FieldDescriptor.TYPE_MESSAGE:
        assert isinstance(value, Message)
        if isinstance(value, Timestamp):
            check_time(value, where, EARLIEST_POST)
        else:
            _check_message(value, prefix, f"{name}.", max_text_chars)
    elif kind in _INTEGERS:
        assert isinstance(value, int)
        if not 0 <= value <= MAX_COUNT:
            raise InvalidArgument(where, f"must be a count from 0 to {MAX_COUNT:,}")
    elif kind in _FLOATS:
        assert isinstance(value, float)
        low, high = _RANGES.get(name, (-math.inf, math.inf))
        if not math.isfinite(value) or not low <= value <= high:
            bounds = f"between {low:g} and {high:g}" if math.isfinite(low) else "a finite number"
            raise InvalidArgument(where, f"must be {bounds}")

