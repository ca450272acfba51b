"""YouTube Data API v3: comments on a video or on a channel, with their replies.

`commentThreads.list` (newest first, `order=time`) is paged with `nextPageToken` until the newest
thread of the previous poll is reached. A thread carries its top-level comment and some of its
replies (`part=replies`); when `totalReplyCount` is more than came inline, the rest is read with
`comments.list?parentId=`. Threads on the first page whose reply count grew since the last poll are
read again the same way, so a new reply to a recent thread is found too; each thread's replies are
kept apart by a TimeCursor of their own (the newest 200 threads are remembered).

The API key goes in `key`; every list call costs 1 unit of the project's daily quota (10,000 by
default). Quota and rate limits (429, or 403 with reason rateLimitExceeded) are retried by the
shared HTTP client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import Fetch, SourceConfig, TimeCursor, new_post, parse_time
from services.ingestion.connectors.http import Http, HttpConnector

PAGE_LIMIT = 100
MAX_PAGES = 10
MAX_REPLY_PAGES = 5
MAX_THREADS_REMEMBERED = 200
WATCH_URL = "https://www.youtube.com/watch"
DEFAULT_API = "https://www.googleapis.com/youtube/v3"


def comment_url(video: str, channel: str, comment_id: str) -> str:
    """Where a person sees the comment: under its video, else in the channel's discussion."""
    if video:
        return f"{WATCH_URL}?v={video}&lc={comment_id}"
    return f"https://www.youtube.com/channel/{channel}/discussion?lc={comment_id}" if channel else ""


class YouTubeConnector(HttpConnector):
    kind = "youtube"

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        query: dict[str, Any] = {"part": "snippet,replies", "maxResults": PAGE_LIMIT, "order": "time",
                                 "textFormat": "plainText"}
        if source.params.get("video_id"):
            query["videoId"] = source.params["video_id"]
        elif source.params.get("channel_id"):
            query["allThreadsRelatedToChannelId"] = source.params["channel_id"]
        else:
            raise ValueError("params.video_id: a video_id or a channel_id is required for youtube sources")
        key = {"key": source.secret} if source.secret else {}
        api = source.url.rstrip("/") or DEFAULT_API
        seen = TimeCursor.load(cursor)
        threads: dict[str, dict[str, Any]] = json.loads(cursor.get("threads", "{}"))
        fetch = Fetch([], {})
        found: list[post_pb2.Post] = []
        with self.http() as http:
            for page in range(MAX_PAGES):
                body, _ = http.get_json(f"{api}/commentThreads", {**query, **key})
                reached_old = False
                for item in body.get("items", []) if isinstance(body, dict) else []:
                    try:
                        post = self._post(source, item)
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        name = item.get("id", "?") if isinstance(item, dict) else "?"
                        fetch.skipped.append(f"thread {name}: {exc!r}")
                        continue
                    new = seen.is_new(post.created_at.ToDatetime(tzinfo=UTC), post.id)
                    if new:
                        found.append(post)
                    reached_old = reached_old or not new
                    if new or page == 0:
                        found += self._replies(http, api, key, source, item, threads, fetch)
                token = body.get("nextPageToken") if isinstance(body, dict) else None
                if reached_old or not token or seen.newest is None:
                    break
                query["pageToken"] = token
        for post in sorted(found, key=lambda p: (p.created_at.seconds, p.created_at.nanos)):
            fetch.posts.append(post)
            if not post.parent_id:
                seen.advance(post.created_at.ToDatetime(tzinfo=UTC), post.id)
        newest = sorted(threads.items(), key=lambda t: str(t[1].get("at", "")), reverse=True)
        fetch.cursor = {**seen.dump(), "threads": json.dumps(dict(newest[:MAX_THREADS_REMEMBERED]), sort_keys=True)}
        return fetch

    def _replies(self, http: Http, api: str, key: Mapping[str, str], source: SourceConfig, item: dict[str, Any],
                 threads: dict[str, dict[str, Any]], fetch: Fetch) -> list[post_pb2.Post]:
        """The thread's replies not taken before: inline when all came inline, else by comments.list."""
        snippet = item["snippet"]
        total = int(snippet.get("totalReplyCount") or 0)
        known = threads.get(item["id"], {})
        if total <= int(known.get("count", 0)):
            return []
        inline = (item.get("replies") or {}).get("comments") or []
        if len(inline) < total:
            inline = []
            query: dict[str, Any] = {"part": "snippet", "parentId": item["id"], "maxResults": PAGE_LIMIT,
                                     "textFormat": "plainText", **key}
            for _ in range(MAX_REPLY_PAGES):
                body, _ = http.get_json(f"{api}/comments", query)
                inline += body.get("items", []) if isinstance(body, dict) else []
                token = body.get("nextPageToken") if isinstance(body, dict) else None
                if not token:
                    break
                query["pageToken"] = token
        replies_seen = TimeCursor.load(known)
        replies = []
        for comment in inline:
            try:
                reply = self._comment(source, comment, snippet, item["id"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                fetch.skipped.append(f"reply {comment.get('id', '?') if isinstance(comment, dict) else '?'}: {exc!r}")
                continue
            when = reply.created_at.ToDatetime(tzinfo=UTC)
            if replies_seen.is_new(when, reply.id):
                replies.append(reply)
        for reply in replies:
            replies_seen.advance(reply.created_at.ToDatetime(tzinfo=UTC), reply.id)
        threads[item["id"]] = {**replies_seen.dump(), "count": total,
                               "at": str(snippet["topLevelComment"]["snippet"].get("publishedAt", ""))}
        return replies

    def _post(self, source: SourceConfig, item: dict[str, Any]) -> post_pb2.Post:
        thread = item["snippet"]
        post = self._comment(source, thread["topLevelComment"], thread, item["id"])
        post.engagement.replies = int(thread.get("totalReplyCount") or 0)
        return post

    def _comment(self, source: SourceConfig, comment: dict[str, Any], thread: Mapping[str, Any],
                 thread_id: str) -> post_pb2.Post:
        snippet = comment["snippet"]
        text = snippet.get("textOriginal") or snippet.get("textDisplay") or ""
        if not text.strip():
            raise ValueError("empty comment")
        published = parse_time(snippet["publishedAt"])
        post = new_post(source, comment["id"], text, published)
        video = thread.get("videoId") or snippet.get("videoId", "")
        channel = thread.get("channelId") or snippet.get("channelId", "") or source.params.get("channel_id", "")
        post.source = video or source.params.get("channel_id", "") or channel
        post.url = comment_url(video, channel, comment["id"])
        post.author.id = (snippet.get("authorChannelId") or {}).get("value", "")
        post.author.name = snippet.get("authorDisplayName", "")
        post.engagement.likes = int(snippet.get("likeCount") or 0)
        post.conversation_id = thread_id
        if snippet.get("parentId"):
            post.parent_id = post.root_id = str(snippet["parentId"])  # YouTube threads are one level deep
        if snippet.get("updatedAt") and parse_time(snippet["updatedAt"]) > published:
            post.edited_at.FromDatetime(parse_time(snippet["updatedAt"]).astimezone(UTC))
        return post
