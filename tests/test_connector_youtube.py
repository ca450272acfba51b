"""YouTube Data API v3 commentThreads from a local server: pageToken walk, quota 403, bad threads."""

from __future__ import annotations

from typing import Any

from services.ingestion.connectors.base import SourceConfig
from services.ingestion.connectors.youtube import YouTubeConnector
from tests.fixtures.channel_servers import ChannelServer, Reply, Seen

PATH = "/youtube/v3/commentThreads"


def thread(n: int, text: str, published: str) -> dict[str, Any]:
    """A commentThread resource (developers.google.com/youtube/v3/docs/commentThreads)."""
    return {"kind": "youtube#commentThread", "etag": f"e{n}", "id": f"th{n}", "snippet": {
        "channelId": "UCcity", "videoId": "vid1", "canReply": True, "totalReplyCount": n, "isPublic": True,
        "topLevelComment": {"kind": "youtube#comment", "etag": f"c{n}", "id": f"cm{n}", "snippet": {
            "channelId": "UCcity", "videoId": "vid1", "textDisplay": text, "textOriginal": text,
            "authorDisplayName": f"@viewer{n}", "authorChannelId": {"value": f"UCv{n}"},
            "canRate": True, "viewerRating": "none", "likeCount": 10 + n, "publishedAt": published,
            "updatedAt": published}}}}


def response(items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "youtube#commentThreadListResponse", "etag": "x",
                            "pageInfo": {"totalResults": len(items), "resultsPerPage": 100}, "items": items}
    if token:
        body["nextPageToken"] = token
    return body


def source(url: str) -> SourceConfig:
    return SourceConfig("t1", "council-video", "youtube", f"{url}/youtube/v3", {"video_id": "vid1"}, "api-key")


def test_walks_pages_until_the_previous_newest(channel_server: ChannelServer) -> None:
    pages = {
        None: response([thread(4, "Great meeting", "2025-03-04T10:00:00Z"),
                        {"kind": "youtube#commentThread", "id": "broken"}], "P2"),
        "P2": response([thread(3, "Why was item 7 skipped?", "2025-03-03T10:00:00Z"),
                        thread(2, "old", "2025-03-02T10:00:00Z")], "P3"),
    }
    channel_server.route(PATH, handler=lambda r: Reply(200, pages[r.query.get("pageToken")]))
    cursor = {"newest": "2025-03-02T10:00:00+00:00", "ids_at_newest": "cm2"}
    fetch = YouTubeConnector(5, 1).fetch(source(channel_server.url), cursor)
    assert [p.id for p in fetch.posts] == ["cm3", "cm4"]
    post = fetch.posts[1]
    assert post.url == "https://www.youtube.com/watch?v=vid1&lc=cm4"
    assert (post.author.id, post.author.name, post.engagement.likes, post.engagement.replies) == (
        "UCv4", "@viewer4", 14, 4)
    assert len(fetch.skipped) == 1 and "broken" in fetch.skipped[0]
    assert fetch.cursor == {"newest": "2025-03-04T10:00:00+00:00", "ids_at_newest": "cm4"}
    first: Seen = channel_server.requests_to(PATH)[0]
    assert first.query == {"part": "snippet", "maxResults": "100", "order": "time", "textFormat": "plainText",
                           "videoId": "vid1", "key": "api-key"}
    assert len(channel_server.requests_to(PATH)) == 2  # P3 is never asked for


def test_rate_limit_exceeded_403_is_retried(channel_server: ChannelServer) -> None:
    waits: list[float] = []
    error = {"error": {"code": 403, "message": "Rate limit", "errors": [
        {"message": "Rate limit", "domain": "youtube.quota", "reason": "rateLimitExceeded"}]}}
    channel_server.route(PATH, Reply(403, error, {"Retry-After": "3"}),
                         Reply(200, response([thread(1, "hello", "2025-03-01T10:00:00Z")], None)))
    fetch = YouTubeConnector(5, 2, sleep=waits.append).fetch(source(channel_server.url), {})
    assert [p.id for p in fetch.posts] == ["cm1"] and waits == [3.0]
