"""Reddit listing JSON: a subreddit's new posts (t3) or new comments (t1).

Listings are newest first and paged backwards with `after`; the connector walks pages until it meets
an item the previous poll already had, by a TimeCursor on `created_utc` (every id at the newest
second is remembered: items share a second often, and "not older than the last one" would resend
them all). That is robust to the newest item having been deleted since, unlike Reddit's `before`.

Items whose body is gone ("[deleted]" by its author, "[removed]" by moderators) are skipped; an item
whose author deleted their account but whose body is intact is kept, without an author. Posts created
in the last `recheck_hours` (24; the newest 100 of them) are fetched again each poll through
`/api/info`: one whose body has turned "[deleted]" or "[removed]" since is reported deleted.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import ConnectorError, Fetch, SourceConfig, TimeCursor, new_post, require
from services.ingestion.connectors.http import Http, HttpConnector

PAGE_LIMIT = 100
MAX_PAGES = 10
# /api/info answers at most 100 fullnames per call: one call per poll re-checks the newest 100.
MAX_RECHECK = 100
DEFAULT_RECHECK_HOURS = 24.0
GONE = frozenset({"[deleted]", "[removed]", "[ Removed by Reddit ]", "[removed by reddit]"})
SITE = "https://www.reddit.com"


def gone(kind: str, data: Mapping[str, Any]) -> bool:
    """True when the item's body is gone: deleted by its author, removed by moderators or Reddit."""
    if kind == "t3":
        return bool(data.get("removed_by_category")) or str(data.get("selftext", "")).strip() in GONE
    return str(data.get("body", "")).strip() in GONE


def permalink(kind: str, data: Mapping[str, Any]) -> str:
    """The item's page: its permalink, or for a comment without one, built from its link and own id."""
    if data.get("permalink"):
        return f"{SITE}{data['permalink']}"
    if kind == "t1" and data.get("link_id") and data.get("id"):
        sub = f"/r/{data['subreddit']}" if data.get("subreddit") else ""
        return f"{SITE}{sub}/comments/{str(data['link_id']).removeprefix('t3_')}/_/{data['id']}/"
    if kind == "t3" and data.get("id"):
        return f"{SITE}/comments/{data['id']}/"
    return ""


class RedditConnector(HttpConnector):
    kind = "reddit"

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        subreddit = require(source.params, "subreddit", self.kind).removeprefix("r/")
        listing = source.params.get("listing", "new")
        if listing not in ("new", "comments"):
            raise ValueError(f"params.listing: must be new or comments, got {listing!r}")
        recheck_s = float(source.params.get("recheck_hours", DEFAULT_RECHECK_HOURS)) * 3600
        base = source.url.rstrip("/") or SITE
        url = f"{base}/r/{subreddit}/{listing}.json"
        headers = {"Authorization": f"bearer {source.secret}"} if source.secret else {}
        seen = _load(cursor)
        recent: list[tuple[str, float]] = [(str(n), float(c)) for n, c in json.loads(cursor.get("recent", "[]"))]
        fresh: list[dict[str, Any]] = []
        fetch = Fetch([], {})
        with self.http(headers) as http:
            after = None
            for _ in range(MAX_PAGES):
                query = {"limit": PAGE_LIMIT, "raw_json": 1, **({"after": after} if after else {})}
                body, _ = http.get_json(url, query)
                data = body.get("data", {}) if isinstance(body, dict) else {}
                page = [c for c in data.get("children", []) if isinstance(c, dict)]
                new = [c for c in page if _is_new(seen, c)]
                fresh.extend(new)
                after = data.get("after")
                if seen.newest is None or len(new) < len(page) or not after:
                    break
            horizon = time.time() - recheck_s
            recent = [(name, created) for name, created in recent if created >= horizon]
            if recent and recheck_s > 0:
                fetch.deleted = self._deleted(http, base, [name for name, _ in recent])
        for child in reversed(fresh):
            data = child.get("data") or {}
            try:
                post = self._post(source, child.get("kind", ""), data)
            except (KeyError, TypeError, ValueError) as exc:
                fetch.skipped.append(f"{data.get('name', '?')}: {exc}")
                continue
            fetch.posts.append(post)
            recent.append((post.id, post.created_at.ToSeconds()))
        for child in fresh:  # skipped items move the cursor too, so they are not fetched again
            created = _created(child)
            if created is not None:
                seen.advance(created, str((child.get("data") or {}).get("name", "")))
        recent = [item for item in recent if item[0] not in set(fetch.deleted)]
        fetch.cursor = {**seen.dump(), "recent": json.dumps(sorted(recent, key=lambda r: -r[1])[:MAX_RECHECK])}
        return fetch

    def _deleted(self, http: Http, base: str, names: list[str]) -> list[str]:
        """The fullnames among these whose bodies are gone now."""
        body, _ = http.get_json(f"{base}/api/info.json", {"id": ",".join(names[:MAX_RECHECK]), "raw_json": 1})
        if not isinstance(body, dict):
            raise ConnectorError(f"{base}/api/info.json: expected a Listing")
        children = (body.get("data") or {}).get("children") or []
        return [str(c["data"]["name"]) for c in children if isinstance(c, dict) and isinstance(c.get("data"), dict)
                and c["data"].get("name") and gone(str(c.get("kind", "")), c["data"])]

    def _post(self, source: SourceConfig, kind: str, data: dict[str, Any]) -> post_pb2.Post:
        if kind not in ("t3", "t1"):
            raise ValueError(f"unexpected kind {kind!r}")
        if gone(kind, data):
            raise ValueError("deleted or removed")
        if kind == "t3":
            body = html.unescape(str(data.get("selftext", "")))
            text = "\n\n".join(part for part in (html.unescape(str(data["title"])), body) if part.strip())
            replies = int(data.get("num_comments") or 0)
        else:
            text, replies = html.unescape(str(data["body"])), 0
        created = datetime.fromtimestamp(float(data["created_utc"]), UTC)
        post = new_post(source, data["name"], text, created)
        post.source = f"r/{data.get('subreddit', '')}"
        post.url = permalink(kind, data)
        if data.get("author") != "[deleted]":  # the account is gone; what it wrote stays
            post.author.id = data.get("author_fullname", "") or data.get("author", "")
            post.author.name = data.get("author", "")
        post.engagement.likes = max(0, int(data.get("ups", data.get("score", 0)) or 0))
        post.engagement.replies = replies
        _describe(post, kind, data)
        return post


def _describe(post: post_pb2.Post, kind: str, data: Mapping[str, Any]) -> None:
    """Threading, edits, NSFW and spoiler marks, flair, and a link post's target and images."""
    if kind == "t1":
        post.parent_id = str(data.get("parent_id") or "")
        post.root_id = post.conversation_id = str(data.get("link_id") or "")
    else:
        post.conversation_id = post.id
        target = str(data.get("url_overridden_by_dest") or data.get("url") or "")
        if not data.get("is_self") and target.startswith("http") and not target.startswith(post.url):
            post.links.append(target)
        for image in (data.get("preview") or {}).get("images") or []:
            source = image.get("source") or {}
            if source.get("url"):
                post.media.add(type="image", url=html.unescape(str(source["url"])))
    edited = data.get("edited")
    if isinstance(edited, int | float) and not isinstance(edited, bool) and edited > 0:
        post.edited_at.FromSeconds(int(edited))
    post.sensitive = bool(data.get("over_18"))
    if data.get("spoiler"):
        post.content_warning = "spoiler"
    flair = html.unescape(str(data.get("link_flair_text") or "")).strip()
    if flair:
        post.categories.append(flair)


def _load(cursor: Mapping[str, str]) -> TimeCursor:
    """The time cursor; a cursor of the earlier form (the newest fullname and its created_utc) is read
    as that one id at that second."""
    if "created" in cursor:
        created = float(cursor.get("created") or 0)
        if not created:
            return TimeCursor()
        return TimeCursor(datetime.fromtimestamp(created, UTC), {cursor.get("newest", "")} - {""})
    return TimeCursor.load(cursor)


def _created(child: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(float((child.get("data") or {})["created_utc"]), UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _is_new(seen: TimeCursor, child: Mapping[str, Any]) -> bool:
    created = _created(child)
    return True if created is None else seen.is_new(created, str((child.get("data") or {}).get("name", "")))
