"""RSS 2.0 and Atom feeds (agency newsrooms, local news, official alert feeds), parsed by feedparser.

Incremental in two ways: a conditional GET with the last ETag / Last-Modified (a 304 costs the feed
nothing), and a TimeCursor on each entry's published (else updated) date so that a feed that
re-serves its last 20 items yields only the new ones.

No entry is dropped for its date. Feeds in other languages write dates feedparser cannot read
("Seg, 24 Set 2018", "mer, 16 nov 2022"); those go to dateparser, a lenient multi-language parser,
before falling back to `updated`, and an entry with no usable date at all is dated when first seen
and remembered by id (while the feed still serves it) instead of moving the time cursor. Relative
links are resolved against the entry's xml:base, else the URL the feed was fetched from.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import dateparser
import feedparser

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import (
    ConnectorError,
    Fetch,
    SourceConfig,
    TimeCursor,
    html_to_text,
    new_post,
    parse_time,
)
from services.ingestion.connectors.http import HttpConnector
from services.ingestion.post_fields import thin_ring

_MEDIA_KINDS = {"image": "image", "video": "video", "audio": "audio"}
_NOT_LINKS = frozenset({"alternate", "enclosure", "self", "license"})


class FeedConnector(HttpConnector):
    kind = "rss"

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        headers = {}
        if cursor.get("etag"):
            headers["If-None-Match"] = cursor["etag"]
        if cursor.get("last_modified"):
            headers["If-Modified-Since"] = cursor["last_modified"]
        with self.http() as http:
            response = http.get(source.url, headers=headers)
        if response.status_code == 304:
            return Fetch([], dict(cursor))
        if response.status_code >= 400:
            raise ConnectorError(f"GET {source.url}: HTTP {response.status_code}")
        parsed = feedparser.parse(response.content, response_headers=dict(response.headers))
        if parsed.bozo and not parsed.entries:
            raise ConnectorError(f"{source.url}: not a feed ({parsed.get('bozo_exception')})")
        language = str(parsed.feed.get("language") or "")
        seen = TimeCursor.load(cursor)
        undated_before = set(filter(None, cursor.get("undated_ids", "").split("\n")))
        undated_now: list[str] = []
        first_seen = datetime.now(UTC)
        fetch = Fetch([], {})
        dated = [(entry, entry_time(entry, language)) for entry in parsed.entries]
        for entry, when in sorted(dated, key=lambda pair: (pair[1] is None, pair[1] or first_seen)):
            post_id = entry_id(entry)
            if when is None:
                undated_now.append(post_id)
                if post_id in undated_before:
                    continue
            elif not seen.is_new(when, post_id):
                continue
            text = _text(entry)
            if not text:
                fetch.skipped.append(f"entry {post_id}: no title or text")
                continue
            post = new_post(source, post_id, text, when or first_seen)
            post.source = source.url
            base = _base(entry, str(response.url))
            post.url = urljoin(base, entry["link"]) if entry.get("link") else ""
            post.author.name = entry.get("author", "") or parsed.feed.get("title", "")
            _describe(post, entry, language, base)
            fetch.posts.append(post)
            if when is not None:
                seen.advance(when, post_id)
        fetch.cursor = {**seen.dump()}
        if undated_now:
            fetch.cursor["undated_ids"] = "\n".join(sorted(set(undated_now)))
        for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
            if response.headers.get(header):
                fetch.cursor[key] = response.headers[header]
        return fetch


def _field(entry: Any, name: str) -> Any:
    """The entry's own value (dict.get: feedparser's get maps a missing published to updated)."""
    return dict.get(entry, name)


def _base(entry: Any, feed_url: str) -> str:
    """What the entry's relative links are relative to: its xml:base, else the feed's URL.

    (feedparser applies xml:base itself; ids are left as written, so they never change with it.)"""
    detail = _field(entry, "title_detail") or _field(entry, "summary_detail") or {}
    return urljoin(feed_url, str(detail.get("base") or ""))


def entry_time(entry: Any, feed_language: str) -> datetime | None:
    """published, read by feedparser or else leniently in any language; then updated likewise."""
    for name in ("published", "updated"):
        stamp = _field(entry, f"{name}_parsed")
        if stamp:
            return datetime.fromtimestamp(calendar.timegm(stamp), UTC)
        if _field(entry, name):
            when = lenient_date(str(entry[name]), feed_language.split("-")[0].lower())
            if when is not None:
                return when
    return None


@lru_cache(maxsize=1024)
def lenient_date(text: str, language: str = "") -> datetime | None:
    """A date written in any of dateparser's languages (the feed's own tried first); naive means UTC.

    Day, month and year must all be there: "24 Set" alone is not a date to file a post under.
    """
    settings: Any = {"TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True, "REQUIRE_PARTS": ["day", "month", "year"]}
    for languages in ([language], None) if language else (None,):
        try:
            when = dateparser.parse(text, languages=languages, settings=settings)
        except ValueError:  # a language dateparser does not know
            continue
        if when is not None:
            return when.astimezone(UTC)
    return None


def entry_id(entry: Any) -> str:
    """guid / Atom id, else the link, else a digest of what the entry says (the same every poll)."""
    post_id = entry.get("id") or entry.get("link")
    if post_id:
        return str(post_id)
    body = f"{entry.get('title', '')}\n{entry.get('summary', '')}"
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def _text(entry: Any) -> str:
    """Title, then the body: Atom content when given, else the RSS description / Atom summary."""
    title = html_to_text(entry.get("title", ""))
    contents = entry.get("content") or []
    body = html_to_text(contents[0].get("value", "") if contents else entry.get("summary", ""))
    parts = [title] if title else []
    if body and body != title:
        parts.append(body)
    return "\n\n".join(parts)


def _describe(post: post_pb2.Post, entry: Any, feed_language: str, base: str) -> None:
    """Categories, media, other links, language tags, edits, location and CAP details of an entry."""
    post.categories.extend(str(tag.get("label") or tag.get("term") or "") for tag in entry.get("tags") or [])
    for enclosure in entry.get("enclosures") or []:
        kind = _MEDIA_KINDS.get(str(enclosure.get("type", "")).split("/")[0], "other")
        post.media.add(type=kind, url=str(enclosure.get("href", "")))
    for item in entry.get("media_content") or []:
        medium = str(item.get("medium") or str(item.get("type", "")).split("/")[0])
        post.media.add(type=_MEDIA_KINDS.get(medium, "other"), url=str(item.get("url", "")))
    post.links.extend(urljoin(base, str(link["href"])) for link in entry.get("links") or []
                      if link.get("href") and link.get("rel", "alternate") not in _NOT_LINKS)
    detail = entry.get("title_detail") or {}
    language = str(detail.get("language") or feed_language)
    if language:
        post.sender_languages.append(language)
    published, updated = _field(entry, "published_parsed"), _field(entry, "updated_parsed")
    if published and updated and calendar.timegm(updated) > calendar.timegm(published):
        post.edited_at.FromSeconds(calendar.timegm(updated))
    where = entry.get("where") or {}
    try:
        if where.get("type") == "Point":
            lon, lat = where["coordinates"][:2]
            post.geo.lat, post.geo.lon = float(lat), float(lon)
        elif entry.get("geo_lat") and entry.get("geo_long"):
            post.geo.lat, post.geo.lon = float(entry["geo_lat"]), float(entry["geo_long"])
    except (TypeError, ValueError, KeyError):
        post.ClearField("geo")  # a malformed point says nothing; the entry itself is kept
    _official_alert(post, entry, where)


def _official_alert(post: post_pb2.Post, entry: Any, where: Mapping[str, Any]) -> None:
    """CAP 1.2 elements in the entry (as the NWS and other alerting authorities' feeds carry them)."""
    if not any(key.startswith("cap_") for key in entry):
        return
    alert = post.official_alert
    alert.event = str(entry.get("cap_event", "")).strip()
    for name in ("severity", "urgency", "certainty"):
        setattr(alert, name, str(entry.get(f"cap_{name}", "")).strip().lower())
    alert.area = str(entry.get("cap_areadesc", "")).strip()
    ring: list[tuple[float, float]] = []
    try:
        if entry.get("cap_polygon"):  # "lat,lon lat,lon ..."
            pairs = (pair.split(",") for pair in str(entry["cap_polygon"]).split())
            ring = [(float(lat), float(lon)) for lat, lon in pairs]
        elif where.get("type") == "Polygon":
            ring = [(float(lat), float(lon)) for lon, lat, *_ in where["coordinates"][0]]
    except (TypeError, ValueError, KeyError, IndexError):
        ring = []  # an unreadable polygon; the words of areaDesc still say where
    for lat, lon in thin_ring(ring):
        alert.area_polygon.add(lat=lat, lon=lon)
    try:
        if entry.get("cap_expires"):
            alert.expires_at.FromDatetime(parse_time(str(entry["cap_expires"])).astimezone(UTC))
    except ValueError:
        alert.ClearField("expires_at")
