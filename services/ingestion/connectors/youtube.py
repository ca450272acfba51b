"""YouTube Data API v3 `commentThreads.list`: top-level comments on a video or a channel.

Asked for newest first (`order=time`) and paged with `nextPageToken` until the newest comment of the
previous poll is reached. The API key goes in `key`; quota and rate limits (429, or 403 with reason
rateLimitExceeded) are retried by the shared HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import Fetch, SourceConfig, TimeCursor, new_post, parse_time
from services.ingestion.connectors.http import HttpConnector

PAGE_LIMIT = 100
MAX_PAGES = 10
DEFAULT_URL = "https://www.googleapis.com/youtube/v3"


class YouTubeConnector(HttpConnector):
    kind = "youtube"

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        query: dict[str, Any] = {"part": "snippet", "maxResults": PAGE_LIMIT, "order": "time",
                                 "textFormat": "plainText"}
        if source.params.get("video_id"):
            query["videoId"] = source.params["video_id"]
        elif source.params.get("channel_id"):
            query["allThreadsRelatedToChannelId"] = source.params["channel_id"]
        else:
            raise ValueError("params.video_id: a video_id or a channel_id is required for youtube sources")
        if source.secret:
            query["key"] = source.secret
        url = (source.url.rstrip("/") or DEFAULT_URL) + "/commentThreads"
        seen = TimeCursor.load(cursor)
        fetch = Fetch([], {})
        found: list[post_pb2.Post] = []
        with self.http() as http:
            for _ in range(MAX_PAGES):
                body, _ = http.get_json(url, query)
                reached_old = False
                for item in body.get("items", []) if isinstance(body, dict) else []:
                    try:
                        post = self._post(source, item)
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        name = item.get("id", "?") if isinstance(item, dict) else "?"
                        fetch.skipped.append(f"thread {name}: {exc!r}")
                        continue
                    if seen.is_new(post.created_at.ToDatetime(tzinfo=UTC), post.id):
                        found.append(post)
                    else:
                        reached_old = True
                token = body.get("nextPageToken") if isinstance(body, dict) else None
                if reached_old or not token or seen.newest is None:
                    break
                query["pageToken"] = token
        for post in sorted(found, key=lambda p: (p.created_at.seconds, p.created_at.nanos)):
            fetch.posts.append(post)
            seen.advance(post.created_at.ToDatetime(tzinfo=UTC), post.id)
        fetch.cursor = seen.dump()
        return fetch

    def _post(self, source: SourceConfig, item: dict[str, Any]) -> post_pb2.Post:
        thread = item["snippet"]
        comment = thread["topLevelComment"]
        snippet = comment["snippet"]
        text = snippet.get("textOriginal") or snippet.get("textDisplay") or ""
        if not text.strip():
            raise ValueError("empty comment")
        post = new_post(source, comment["id"], text, parse_time(snippet["publishedAt"]))
        video = thread.get("videoId") or snippet.get("videoId", "")
        post.source = video or source.params.get("channel_id", "")
        post.url = f"https://www.youtube.com/watch?v={video}&lc={comment['id']}" if video else ""
        post.author.id = (snippet.get("authorChannelId") or {}).get("value", "")
        post.author.name = snippet.get("authorDisplayName", "")
        post.engagement.likes = int(snippet.get("likeCount") or 0)
        post.engagement.replies = int(thread.get("totalReplyCount") or 0)
        return post
