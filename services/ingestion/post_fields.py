"""The Post fields that carry what a channel says beyond the text: threading, tags, media, links,
the sender's language tags, Open311 and CAP details (their proto comments state the same limits).

Their lengths are in services/common/post_validation.py with every other field's, checked by
`check_post`. Two uses here. `check_fields` adds what a length cannot say (how many values, a link
that is an http(s) URL, a BCP-47 tag, a CAP value from its list, a closed polygon), refusing a post
sent to IngestPosts with the field, like every other check of `normalize.validate_post`. `fit` makes
what a connector read from a channel fit all of them before it is ingested: a citizen's post must
never be lost because its alt text was long or it carried 60 links, so connectors' posts are clipped
(and unusable values dropped) instead of refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableSequence, Sized
from urllib.parse import urlsplit

from civic.listening.v1 import post_pb2
from services.common.errors import InvalidArgument
from services.common.post_validation import MAX_CHARS

MAX_REF_CHARS = MAX_CHARS["parent_id"]
MAX_CONTENT_WARNING_CHARS = MAX_CHARS["content_warning"]
MAX_ALT_TEXT_CHARS = MAX_CHARS["media.alt_text"]
MAX_URL_CHARS = MAX_CHARS["links"]
MAX_HASHTAGS = MAX_MENTIONS = 100
MAX_MEDIA = 20
MAX_LINKS = 50
MAX_SENDER_LANGUAGES = 8
MAX_CATEGORIES = 50
MAX_AREA_POINTS = 100
MEDIA_TYPES = ("image", "video", "audio", "other")
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
CAP_VALUES = {
    "severity": ("extreme", "severe", "moderate", "minor", "unknown"),
    "urgency": ("immediate", "expected", "future", "past", "unknown"),
    "certainty": ("observed", "likely", "possible", "unlikely", "unknown"),
}
_REFS = ("parent_id", "root_id", "conversation_id")
_REQUEST_TEXTS = ("status", "service_code", "service_name", "agency", "address")
_ALERT_TEXTS = ("event", "area")
_SPACE = re.compile(r"\s")
_URL_RULE = f"must be an http(s) URL of at most {MAX_URL_CHARS:,} characters"


def _at_most(values: Sized, limit: int, where: str) -> None:
    if len(values) > limit:
        raise InvalidArgument(where, f"must hold at most {limit} values, got {len(values)}")


def is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(value) <= MAX_URL_CHARS


def check_fields(post: post_pb2.Post, field: str) -> None:
    """Raises InvalidArgument naming `field`.<sub-field> for the first of these fields that is unusable
    (their lengths: check_post)."""
    _check_words(post.hashtags, MAX_HASHTAGS, f"{field}.hashtags", lambda t: t.lstrip("#"))
    _check_words(post.mentions, MAX_MENTIONS, f"{field}.mentions", str)
    _at_most(post.media, MAX_MEDIA, f"{field}.media")
    for i, media in enumerate(post.media):
        where = f"{field}.media[{i}]"
        if media.type not in MEDIA_TYPES:
            raise InvalidArgument(f"{where}.type", f"must be one of {', '.join(MEDIA_TYPES)}, got {media.type!r}")
        if media.url and not is_web_url(media.url):
            raise InvalidArgument(f"{where}.url", _URL_RULE)
    _at_most(post.links, MAX_LINKS, f"{field}.links")
    for i, link in enumerate(post.links):
        if not is_web_url(link):
            raise InvalidArgument(f"{field}.links[{i}]", _URL_RULE)
    _at_most(post.sender_languages, MAX_SENDER_LANGUAGES, f"{field}.sender_languages")
    for i, tag in enumerate(post.sender_languages):
        if not LANGUAGE_TAG.fullmatch(tag):
            raise InvalidArgument(f"{field}.sender_languages[{i}]", f"{tag[:40]!r} is not a BCP-47 language tag")
    _check_words(post.categories, MAX_CATEGORIES, f"{field}.categories", str.strip, spaces=True)
    if post.HasField("official_alert"):
        _check_alert(post.official_alert, f"{field}.official_alert")


def _check_words(values: MutableSequence[str], most: int, where: str, clean: Callable[[str], str],
                 spaces: bool = False) -> None:
    _at_most(values, most, where)
    for i, value in enumerate(values):
        word = clean(value)
        if not word:
            raise InvalidArgument(f"{where}[{i}]", "must not be empty")
        if not spaces and _SPACE.search(word):
            raise InvalidArgument(f"{where}[{i}]", "must not contain spaces")


def _check_alert(alert: post_pb2.OfficialAlert, where: str) -> None:
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


def normalize_fields(post: post_pb2.Post) -> None:
    """Hashtags lower case without '#', and no value twice in a list: what search filters match on."""
    _replace(post.hashtags, _unique(tag.lstrip("#").lower() for tag in post.hashtags))
    for values in (post.mentions, post.links, post.sender_languages, post.categories):
        _replace(values, _unique(v.strip() for v in values))


def fit(post: post_pb2.Post) -> None:
    """Clips a connector's post into the limits: strings cut, lists shortened, unusable values dropped."""
    for name in _REFS:
        if len(getattr(post, name)) > MAX_REF_CHARS:
            post.ClearField(name)  # a cut id would name another post
    post.content_warning = post.content_warning[:MAX_CONTENT_WARNING_CHARS]
    _keep(post.hashtags, MAX_HASHTAGS, lambda t: _word(t.lstrip("#"), MAX_CHARS["hashtags"]))
    _keep(post.mentions, MAX_MENTIONS, lambda m: _word(m, MAX_CHARS["mentions"]))
    _keep(post.links, MAX_LINKS, is_web_url)
    _keep(post.sender_languages, MAX_SENDER_LANGUAGES,
          lambda t: len(t) <= MAX_CHARS["sender_languages"] and bool(LANGUAGE_TAG.fullmatch(t)))
    _replace(post.categories, [c.strip()[:MAX_CHARS["categories"]] for c in post.categories if c.strip()]
             [:MAX_CATEGORIES])
    media = [m for m in post.media if m.type in MEDIA_TYPES][:MAX_MEDIA]
    for item in media:
        if item.url and not is_web_url(item.url):
            item.url = ""
        item.alt_text = item.alt_text[:MAX_ALT_TEXT_CHARS]
    del post.media[:]
    post.media.extend(media)
    if post.HasField("service_request"):
        for name in _REQUEST_TEXTS:
            limit = MAX_CHARS[f"service_request.{name}"]
            setattr(post.service_request, name, getattr(post.service_request, name)[:limit])
    if post.HasField("official_alert"):
        alert = post.official_alert
        for name in _ALERT_TEXTS:
            setattr(alert, name, getattr(alert, name)[:MAX_CHARS[f"official_alert.{name}"]])
        for name, allowed in CAP_VALUES.items():
            if getattr(alert, name) not in allowed:
                setattr(alert, name, "")
        ring = thin_ring([(p.lat, p.lon) for p in alert.area_polygon])
        del alert.area_polygon[:]
        alert.area_polygon.extend(post_pb2.GeoPoint(lat=lat, lon=lon) for lat, lon in ring)


def _word(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and not _SPACE.search(value)


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
