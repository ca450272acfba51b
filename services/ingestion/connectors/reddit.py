"""Reddit listing JSON: a subreddit's new posts (t3) or new comments (t1).

Listings are newest first and paged backwards with `after`; the connector walks pages until it meets
the newest item of the previous poll (or anything older), which is robust to that item having been
deleted since, unlike Reddit's `before` parameter. Deleted and removed items are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import Fetch, SourceConfig, new_post, require
from services.ingestion.connectors.http import HttpConnector

PAGE_LIMIT = 100
MAX_PAGES = 10
GONE = frozenset({"[deleted]", "[removed]"})


class RedditConnector(HttpConnector):
    kind = "reddit"

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        subreddit = require(source.params, "subreddit", self.kind).removeprefix("r/")
        listing = source.params.get("listing", "new")
        if listing not in ("new", "comments"):
            raise ValueError(f"params.listing: must be new or comments, got {listing!r}")
        base = source.url.rstrip("/") or "https://www.reddit.com"
        url = f"{base}/r/{subreddit}/{listing}.json"
        headers = {"Authorization": f"bearer {source.secret}"} if source.secret else {}
        last_name, last_created = cursor.get("newest", ""), float(cursor.get("created", "0") or 0)
        children: list[dict[str, Any]] = []
        after = None
        with self.http(headers) as http:
            for _ in range(MAX_PAGES):
                query = {"limit": PAGE_LIMIT, "raw_json": 1, **({"after": after} if after else {})}
                body, _ = http.get_json(url, query)
                data = body.get("data", {}) if isinstance(body, dict) else {}
                page = [c for c in data.get("children", []) if isinstance(c, dict)]
                fresh = [c for c in page if _newer(c, last_name, last_created)]
                children.extend(fresh)
                after = data.get("after")
                if not last_name or len(fresh) < len(page) or not after:
                    break
        fetch = Fetch([], dict(cursor))
        for child in reversed(children):
            data = child.get("data") or {}
            try:
                post = self._post(source, child.get("kind", ""), data)
            except (KeyError, TypeError, ValueError) as exc:
                fetch.skipped.append(f"{data.get('name', '?')}: {exc}")
                continue
            if post is not None:
                fetch.posts.append(post)
        if children:
            top = children[0].get("data") or {}
            fetch.cursor = {"newest": str(top.get("name", "")), "created": str(top.get("created_utc", 0))}
        return fetch

    def _post(self, source: SourceConfig, kind: str, data: dict[str, Any]) -> post_pb2.Post | None:
        if kind == "t3":
            body = data.get("selftext", "")
            if data.get("removed_by_category") or body in GONE:
                raise ValueError("deleted or removed")
            text = "\n\n".join(part for part in (data["title"], body) if part)
            replies = int(data.get("num_comments") or 0)
        elif kind == "t1":
            text = data["body"]
            if text in GONE or data.get("author") == "[deleted]":
                raise ValueError("deleted or removed")
            replies = 0
        else:
            raise ValueError(f"unexpected kind {kind!r}")
        created = datetime.fromtimestamp(float(data["created_utc"]), UTC)
        post = new_post(source, data["name"], text, created)
        post.source = f"r/{data.get('subreddit', '')}"
        post.url = f"https://www.reddit.com{data.get('permalink', '')}"
        post.author.id = data.get("author_fullname", "") or data.get("author", "")
        post.author.name = data.get("author", "")
        post.engagement.likes = max(0, int(data.get("ups", data.get("score", 0)) or 0))
        post.engagement.replies = replies
        return post


def _newer(child: dict[str, Any], last_name: str, last_created: float) -> bool:
    data = child.get("data") or {}
    if not last_name:
        return True
    if data.get("name") == last_name:
        return False
    try:
        return float(data.get("created_utc", 0)) >= last_created
    except (TypeError, ValueError):
        return True
