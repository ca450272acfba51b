"""RSS 2.0 and Atom feeds (agency newsrooms, local news), parsed by feedparser.

Incremental in two ways: a conditional GET with the last ETag / Last-Modified (a 304 costs the feed
nothing), and a TimeCursor on each entry's published (else updated) date so that a feed that
re-serves its last 20 items yields only the new ones.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from services.ingestion.connectors.base import (
    ConnectorError,
    Fetch,
    SourceConfig,
    TimeCursor,
    html_to_text,
    new_post,
)
from services.ingestion.connectors.http import HttpConnector


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
        seen = TimeCursor.load(cursor)
        fetch = Fetch([], {})
        for entry in sorted(parsed.entries, key=_sort_key):
            try:
                post_id, when = _identity(entry)
            except ValueError as exc:
                fetch.skipped.append(f"entry {entry.get('title', '?')!r}: {exc}")
                continue
            if not seen.is_new(when, post_id):
                continue
            text = _text(entry)
            if not text:
                fetch.skipped.append(f"entry {post_id}: no title or text")
                continue
            post = new_post(source, post_id, text, when)
            post.source = source.url
            post.url = entry.get("link", "")
            post.author.name = entry.get("author", "") or parsed.feed.get("title", "")
            fetch.posts.append(post)
            seen.advance(when, post_id)
        fetch.cursor = {**seen.dump()}
        for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
            if response.headers.get(header):
                fetch.cursor[key] = response.headers[header]
        return fetch


def _when(entry: Any) -> datetime | None:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None


def _sort_key(entry: Any) -> float:
    when = _when(entry)
    return when.timestamp() if when else 0.0


def _identity(entry: Any) -> tuple[str, datetime]:
    post_id = entry.get("id") or entry.get("link")
    if not post_id:
        raise ValueError("no guid/id and no link")
    when = _when(entry)
    if when is None:
        raise ValueError("no valid pubDate/published/updated date")
    return str(post_id), when


def _text(entry: Any) -> str:
    """Title, then the body: Atom content when given, else the RSS description / Atom summary."""
    title = html_to_text(entry.get("title", ""))
    contents = entry.get("content") or []
    body = html_to_text(contents[0].get("value", "") if contents else entry.get("summary", ""))
    parts = [title] if title else []
    if body and body != title:
        parts.append(body)
    return "\n\n".join(parts)
