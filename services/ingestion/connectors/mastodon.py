"""Mastodon REST API: the public, hashtag or one account's timeline of an instance.

Incremental with `min_id` (statuses immediately newer than the last one seen), following the
`Link: <...>; rel="prev"` header forward page by page, as the Mastodon pagination docs describe.
The first poll takes only the newest page, so a new source does not replay an instance's history.

Timelines never say that a status was deleted, so the statuses ingested in the last `recheck_hours`
(24; the newest 40) are asked for again each poll, 20 at a time with `GET /api/v1/statuses?id[]=`
(Mastodon 4.3+; older servers one by one with `GET /api/v1/statuses/:id`): one that is gone (deleted
by its author, or no longer public) is reported deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

import httpx

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import (
    ConnectorError,
    Fetch,
    SourceConfig,
    html_to_text,
    new_post,
    parse_time,
    require,
)
from services.ingestion.connectors.http import Http, HttpConnector

PAGE_LIMIT = 40
MAX_PAGES = 20
MAX_RECHECK = 40
RECHECK_BATCH = 20
DEFAULT_RECHECK_HOURS = 24.0
_MEDIA_TYPES = {"image": "image", "gifv": "video", "video": "video", "audio": "audio"}


class _Links(HTMLParser):
    """The targets of a status's links that are neither mentions nor hashtags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "a" and found.get("href") and not {"mention", "hashtag"} & set(classes) \
                and "mention" not in (found.get("rel") or ""):
            self.hrefs.append(str(found["href"]))


def links_in(content: str) -> list[str]:
    parser = _Links()
    parser.feed(content)
    parser.close()
    return parser.hrefs


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
            horizon = time.time() - float(source.params.get("recheck_hours", DEFAULT_RECHECK_HOURS)) * 3600
            recent = [(i, at) for i, at in json.loads(cursor.get("recent", "[]")) if at >= horizon]
            if recent:
                fetch.deleted = self._gone(http, source.url.rstrip("/"), [i for i, _ in recent])
        for status_id in sorted(statuses, key=_id_key):
            newest = max(newest, status_id, key=_id_key) if newest else status_id
            try:
                post = self._post(source, statuses[status_id])
            except (KeyError, TypeError, ValueError) as exc:
                fetch.skipped.append(f"status {status_id}: {exc!r}")
                continue
            fetch.posts.append(post)
            recent.append((post.id, post.created_at.ToSeconds()))
        fetch.cursor = {"min_id": newest} if newest else {}
        kept = sorted({i: at for i, at in recent if i not in set(fetch.deleted)}.items(), key=lambda r: -r[1])
        fetch.cursor["recent"] = json.dumps(kept[:MAX_RECHECK])
        return fetch

    def _gone(self, http: Http, base: str, ids: list[str]) -> list[str]:
        """Which of these statuses the instance no longer shows."""
        gone: list[str] = []
        for start in range(0, len(ids), RECHECK_BATCH):
            chunk = ids[start:start + RECHECK_BATCH]
            response = http.get(f"{base}/api/v1/statuses", httpx.QueryParams([("id[]", i) for i in chunk]))
            if response.status_code == 404:  # before Mastodon 4.3: one request per status
                gone += [i for i in chunk if http.get(f"{base}/api/v1/statuses/{i}").status_code in (404, 410)]
                continue
            if response.status_code >= 400:
                raise ConnectorError(f"GET {base}/api/v1/statuses: HTTP {response.status_code}")
            try:
                shown = {str(s.get("id")) for s in response.json() if isinstance(s, dict)}
            except (ValueError, TypeError) as exc:
                raise ConnectorError(f"GET {base}/api/v1/statuses: not a list of statuses") from exc
            gone += [i for i in chunk if i not in shown]
        return gone

    def _post(self, source: SourceConfig, status: dict[str, Any]) -> post_pb2.Post:
        original = status.get("reblog") or status  # a boost carries the citizen's original post
        media = [m for m in original.get("media_attachments") or [] if isinstance(m, dict)]
        # Media only: the descriptions its author wrote are what it says in words.
        text = html_to_text(original["content"]) or "\n".join(
            str(m["description"]).strip() for m in media if m.get("description"))
        if original.get("spoiler_text"):
            text = f"{original['spoiler_text']}\n\n{text}"
        if not text.strip():
            raise ValueError("no text (media without descriptions)")
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
        if original.get("language"):
            post.sender_languages.append(str(original["language"]))
        if original.get("in_reply_to_id"):
            post.parent_id = str(original["in_reply_to_id"])
        else:
            post.conversation_id = post.id
        if original.get("edited_at"):
            post.edited_at.FromDatetime(parse_time(str(original["edited_at"])))
        post.sensitive = bool(original.get("sensitive"))
        post.content_warning = str(original.get("spoiler_text") or "")
        post.hashtags.extend(str(tag["name"]) for tag in original.get("tags") or [] if tag.get("name"))
        post.mentions.extend(str(m["acct"]) for m in original.get("mentions") or [] if m.get("acct"))
        for item in media:
            post.media.add(type=_MEDIA_TYPES.get(str(item.get("type")), "other"),
                           url=str(item.get("url") or item.get("remote_url") or ""),
                           alt_text=str(item.get("description") or ""))
        post.links.extend(links_in(original["content"]))
        card = original.get("card") or {}
        if card.get("url") and card["url"] not in post.links:
            post.links.append(str(card["url"]))
        return post
