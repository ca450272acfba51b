"""Limits of the Post fields that carry what a channel says beyond the text: threading, tags, media,
links, the sender's language tags, Open311 and CAP details (their proto comments state the same).

Two uses. `check_fields` refuses a post sent to IngestPosts that exceeds one, naming the field, like
every other check of `normalize.validate_post`. `fit` makes what a connector read from a channel fit
them before it is ingested: a citizen's post must never be lost because its alt text was long or it
carried 60 links, so connectors' posts are clipped (and unusable values dropped) instead of refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableSequence, Sized
from urllib.parse import urlsplit

from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import post_pb2
from services.common.errors import InvalidArgument

MAX_REF_CHARS = 256
MAX_CONTENT_WARNING_CHARS = 1000
MAX_HASHTAGS, MAX_HASHTAG_CHARS = 100, 100
MAX_MENTIONS, MAX_MENTION_CHARS = 100, 256
MAX_MEDIA, MAX_ALT_TEXT_CHARS = 20, 2000
MEDIA_TYPES = ("image", "video", "audio", "other")
MAX_LINKS, MAX_URL_CHARS = 50, 2048
MAX_SENDER_LANGUAGES, MAX_LANGUAGE_TAG_CHARS = 8, 35
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
MAX_CATEGORIES, MAX_CATEGORY_CHARS = 50, 200
SERVICE_REQUEST_CHARS = {"status": 32, "service_code": 100, "service_name": 200, "agency": 200, "address": 500}
ALERT_CHARS = {"event": 200, "area": 1000}
CAP_VALUES = {
    "severity": ("extreme", "severe", "moderate", "minor", "unknown"),
    "urgency": ("immediate", "expected", "future", "past", "unknown"),
    "certainty": ("observed", "likely", "possible", "unlikely", "unknown"),
}
MAX_AREA_POINTS = 100
_SPACE = re.compile(r"\s")
_URL_RULE = f"must be an http(s) URL of at most {MAX_URL_CHARS:,} characters"
# What a Timestamp may hold and datetime can read (0001-01-01 to 9999-12-31).
_TIMESTAMP_SECONDS = (-62135596800, 253402300799)


def _too_long(value: str, limit: int, where: str) -> None:
    if len(value) > limit:
        raise InvalidArgument(where, f"must be at most {limit:,} characters, got {len(value):,}")


def _at_most(values: Sized, limit: int, where: str) -> None:
    if len(values) > limit:
        raise InvalidArgument(where, f"must hold at most {limit} values, got {len(values)}")


def is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(value) <= MAX_URL_CHARS


def _require_time(stamp: Timestamp, where: str) -> None:
    if not 0 <= stamp.nanos <= 999_999_999 or not _TIMESTAMP_SECONDS[0] <= stamp.seconds <= _TIMESTAMP_SECONDS[1]:
        raise InvalidArgument(where, "is not a valid time")


def check_fields(post: post_pb2.Post, field: str) -> None:
    """Raises InvalidArgument naming `field`.<sub-field> for the first of these fields out of bounds."""
    for name in ("parent_id", "root_id", "conversation_id"):
        _too_long(getattr(post, name), MAX_REF_CHARS, f"{field}.{name}")
    _too_long(post.content_warning, MAX_CONTENT_WARNING_CHARS, f"{field}.content_warning")
    if post.HasField("edited_at"):
        _require_time(post.edited_at, f"{field}.edited_at")
    _check_words(post.hashtags, MAX_HASHTAGS, MAX_HASHTAG_CHARS, f"{field}.hashtags", lambda t: t.lstrip("#"))
    _check_words(post.mentions, MAX_MENTIONS, MAX_MENTION_CHARS, f"{field}.mentions", str)
    _at_most(post.media, MAX_MEDIA, f"{field}.media")
    for i, media in enumerate(post.media):
        where = f"{field}.media[{i}]"
        if media.type not in MEDIA_TYPES:
            raise InvalidArgument(f"{where}.type", f"must be one of {', '.join(MEDIA_TYPES)}, got {media.type!r}")
        if media.url and not is_web_url(media.url):
            raise InvalidArgument(f"{where}.url", _URL_RULE)
        _too_long(media.alt_text, MAX_ALT_TEXT_CHARS, f"{where}.alt_text")
    _at_most(post.links, MAX_LINKS, f"{field}.links")
    for i, link in enumerate(post.links):
        if not is_web_url(link):
            raise InvalidArgument(f"{field}.links[{i}]", _URL_RULE)
    _at_most(post.sender_languages, MAX_SENDER_LANGUAGES, f"{field}.sender_languages")
    for i, tag in enumerate(post.sender_languages):
        if len(tag) > MAX_LANGUAGE_TAG_CHARS or not LANGUAGE_TAG.fullmatch(tag):
            raise InvalidArgument(f"{field}.sender_languages[{i}]", f"{tag[:40]!r} is not a BCP-47 language tag")
    _check_words(post.categories, MAX_CATEGORIES, MAX_CATEGORY_CHARS, f"{field}.categories", str.strip,
                 spaces=True)
    if post.HasField("service_request"):
        request = post.service_request
        for name, limit in SERVICE_REQUEST_CHARS.items():
            _too_long(getattr(request, name), limit, f"{field}.service_request.{name}")
        if request.HasField("updated_at"):
            _require_time(request.updated_at, f"{field}.service_request.updated_at")
    if post.HasField("official_alert"):
        _check_alert(post.official_alert, f"{field}.official_alert")


def _check_words(values: MutableSequence[str], most: int, limit: int, where: str,
                 clean: Callable[[str], str], spaces: bool = False) -> None:
    _at_most(values, most, where)
    for i, value in enumerate(values):
        word = clean(value)
        if not word or len(word) > limit:
            raise InvalidArgument(f"{where}[{i}]", f"must be 1 to {limit} characters")
        if not spaces and _SPACE.search(word):
            raise InvalidArgument(f"{where}[{i}]", "must not contain spaces")


def _check_alert(alert: post_pb2.OfficialAlert, where: str) -> None:
    for name, limit in ALERT_CHARS.items():
        _too_long(getattr(alert, name), limit, f"{where}.{name}")
    for name, allowed in CAP_VALUES.items():
        value = getattr(alert, name)
        if value and value not in allowed:
            raise InvalidArgument(f"{where}.{name}", f"must be one of {', '.join(allowed)} (or empty), got {value!r}")
    ring = alert.area_polygon
    _at_most(ring, MAX_AREA_POINTS, f"{where}.area_polygon")
    if ring and (len(ring) < 4 or (ring[0].lat, ring[0].lon) != (ring[-1].lat, ring[-1].lon)):
        raise InvalidArgument(f"{where}.area_polygon", "must be a closed ring of at least 4 points (first = last)")
    for i, point in enumerate(ring):
        if not (-90 <= point.lat <= 90 and -180 <= point.lon <= 180):
            raise InvalidArgument(f"{where}.area_polygon[{i}]", "must be a latitude and longitude in range")
    if alert.HasField("expires_at"):
        _require_time(alert.expires_at, f"{where}.expires_at")


def normalize_fields(post: post_pb2.Post) -> None:
    """Hashtags lower case without '#', and no value twice in a list: what search filters match on."""
    _replace(post.hashtags, _unique(tag.lstrip("#").lower() for tag in post.hashtags))
    for values in (post.mentions, post.links, post.sender_languages, post.categories):
        _replace(values, _unique(v.strip() for v in values))


def fit(post: post_pb2.Post) -> None:
    """Clips a connector's post into the limits: strings cut, lists shortened, unusable values dropped."""
    for name in ("parent_id", "root_id", "conversation_id"):
        if len(getattr(post, name)) > MAX_REF_CHARS:
            post.ClearField(name)  # a cut id would name another post
    post.content_warning = post.content_warning[:MAX_CONTENT_WARNING_CHARS]
    _keep(post.hashtags, MAX_HASHTAGS, lambda t: 0 < len(t.lstrip("#")) <= MAX_HASHTAG_CHARS and not _SPACE.search(t))
    _keep(post.mentions, MAX_MENTIONS, lambda m: 0 < len(m) <= MAX_MENTION_CHARS and not _SPACE.search(m))
    _keep(post.links, MAX_LINKS, is_web_url)
    _keep(post.sender_languages, MAX_SENDER_LANGUAGES,
          lambda t: len(t) <= MAX_LANGUAGE_TAG_CHARS and bool(LANGUAGE_TAG.fullmatch(t)))
    _replace(post.categories, [c.strip()[:MAX_CATEGORY_CHARS] for c in post.categories if c.strip()][:MAX_CATEGORIES])
    media = [m for m in post.media if m.type in MEDIA_TYPES][:MAX_MEDIA]
    for item in media:
        if item.url and not is_web_url(item.url):
            item.url = ""
        item.alt_text = item.alt_text[:MAX_ALT_TEXT_CHARS]
    del post.media[:]
    post.media.extend(media)
    if post.HasField("service_request"):
        for name, limit in SERVICE_REQUEST_CHARS.items():
            setattr(post.service_request, name, getattr(post.service_request, name)[:limit])
    if post.HasField("official_alert"):
        alert = post.official_alert
        for name, limit in ALERT_CHARS.items():
            setattr(alert, name, getattr(alert, name)[:limit])
        for name, allowed in CAP_VALUES.items():
            if getattr(alert, name) not in allowed:
                setattr(alert, name, "")
        ring = thin_ring([(p.lat, p.lon) for p in alert.area_polygon])
        del alert.area_polygon[:]
        alert.area_polygon.extend(post_pb2.GeoPoint(lat=lat, lon=lon) for lat, lon in ring)


def thin_ring(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A closed ring of at most MAX_AREA_POINTS points (every n-th point kept), or [] if none can be made."""
    points = [(lat, lon) for lat, lon in points if -90 <= lat <= 90 and -180 <= lon <= 180]
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(points) > MAX_AREA_POINTS:
        step = -(-(len(points) - 1) // (MAX_AREA_POINTS - 1))
        points = [*points[:-1:step], points[0]]
    return points if len(points) >= 4 else []


def _unique(values: object) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))  # type: ignore[attr-defined]


def _keep(values: MutableSequence[str], most: int, usable: Callable[[str], bool]) -> None:
    _replace(values, [v for v in values if usable(v)][:most])


def _replace(values: MutableSequence[str], kept: list[str]) -> None:
    del values[:]
    values.extend(kept)
