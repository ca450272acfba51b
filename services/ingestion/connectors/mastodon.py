"""Mastodon REST API: the public, hashtag or one account's timeline of an instance.

Incremental with `min_id` (statuses immediately newer than the last one seen), following the
`Link: <...>; rel="prev"` header forward page by page, as the Mastodon pagination docs describe.
The first poll takes only the newest page, so a new source does not replay an instance's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.ingestion.connectors.base import (
    Fetch,
    SourceConfig,
    html_to_text,
    new_post,
    parse_time,
    require,
)
from services.ingestion.connectors.http import HttpConnector

PAGE_LIMIT = 40
MAX_PAGES = 20


def _id_key(status_id: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings (snowflakes): longer is newer, then lexical."""
    return len(status_id), status_id


class MastodonConnector(HttpConnector):
    kind = "mastodon"

    def _path(self, params: Mapping[str, str]) -> str:
        timeline = params.get("timeline", "tag" if params.get("hashtag") else "public")
        if timeline == "tag":
            return f"/api/v1/timelines/tag/{require(params, 'hashtag', self.kind).lstrip('#')}"
        if timeline == "account":
            return f"/api/v1/accounts/{require(params, 'account_id', self.kind)}/statuses"
        if timeline == "public":
            return "/api/v1/timelines/public"
        raise ValueError(f"params.timeline: must be public, tag or account, got {timeline!r}")

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        url: str | None = source.url.rstrip("/") + self._path(source.params)
        newest = cursor.get("min_id", "")
        first: dict[str, Any] = {"limit": PAGE_LIMIT}
        if source.params.get("local") == "true":
            first["local"] = "true"
        if newest:
            first["min_id"] = newest
        query: dict[str, Any] | None = first  # later pages: the Link URL carries the query
        headers = {"Authorization": f"Bearer {source.secret}"} if source.secret else {}
        fetch = Fetch([], {})
        statuses: dict[str, dict[str, Any]] = {}
        with self.http(headers) as http:
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                page, response = http.get_json(url, query)
                if not isinstance(page, list) or not page:
                    break
                for status in page:
                    if isinstance(status, dict) and isinstance(status.get("id"), str):
                        statuses[status["id"]] = status
                    else:
                        fetch.skipped.append(f"not a status: {str(status)[:80]}")
                if not newest:
                    break
                url, query = response.links.get("prev", {}).get("url"), None
        for status_id in sorted(statuses, key=_id_key):
            newest = max(newest, status_id, key=_id_key) if newest else status_id
            try:
                fetch.posts.append(self._post(source, statuses[status_id]))
            except (KeyError, TypeError, ValueError) as exc:
                fetch.skipped.append(f"status {status_id}: {exc!r}")
        fetch.cursor = {"min_id": newest} if newest else {}
        return fetch

    def _post(self, source: SourceConfig, status: dict[str, Any]) -> Any:
        original = status.get("reblog") or status  # a boost carries the citizen's original post
        text = html_to_text(original["content"])
        if original.get("spoiler_text"):
            text = f"{original['spoiler_text']}\n\n{text}"
        if not text.strip():
            raise ValueError("no text (media only)")
        post = new_post(source, original["id"], text, parse_time(original["created_at"]))
        post.source = source.params.get("hashtag", source.url)
        post.url = original.get("url") or original.get("uri") or ""
        account = original.get("account") or {}
        post.author.id = str(account.get("id", ""))
        post.author.name = account.get("acct", "")
        post.author.follower_count = int(account.get("followers_count") or 0)
        post.engagement.likes = int(original.get("favourites_count") or 0)
        post.engagement.shares = int(original.get("reblogs_count") or 0)
        post.engagement.replies = int(original.get("replies_count") or 0)
        post.language = original.get("language") or ""
        return post
