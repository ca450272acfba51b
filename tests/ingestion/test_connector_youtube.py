"""YouTube Data API v3 commentThreads from a local server: pageToken walk, quota 403, bad threads."""

from __future__ import annotations

from typing import Any

from services.ingestion.connectors.base import SourceConfig
from services.ingestion.connectors.youtube import YouTubeConnector
from tests.fixtures.channel_servers import ChannelServer, Reply, Seen

PATH = "/youtube/v3/commentThreads"


def thread(n: int, text: str, published: str, replies: int = 0) -> dict[str, Any]:
    """A commentThread resource (developers.google.com/youtube/v3/docs/commentThreads)."""
    return {"kind": "youtube#commentThread", "etag": f"e{n}", "id": f"th{n}", "snippet": {
        "channelId": "UCcity", "videoId": "vid1", "canReply": True, "totalReplyCount": replies, "isPublic": True,
        "topLevelComment": {"kind": "youtube#comment", "etag": f"c{n}", "id": f"cm{n}", "snippet": {
            "channelId": "UCcity", "videoId": "vid1", "textDisplay": text, "textOriginal": text,
            "authorDisplayName": f"@viewer{n}", "authorChannelId": {"value": f"UCv{n}"},
            "canRate": True, "viewerRating": "none", "likeCount": 10 + n, "publishedAt": published,
            "updatedAt": published}}}}


def reply(thread_id: str, n: int, text: str, published: str, updated: str | None = None) -> dict[str, Any]:
    """A comment resource that answers a thread (developers.google.com/youtube/v3/docs/comments)."""
    return {"kind": "youtube#comment", "etag": f"r{n}", "id": f"{thread_id}.r{n}", "snippet": {
        "channelId": "UCcity", "videoId": "vid1", "textDisplay": text, "textOriginal": text, "parentId": thread_id,
        "authorDisplayName": f"@replier{n}", "authorChannelId": {"value": f"UCr{n}"}, "canRate": True,
        "viewerRating": "none", "likeCount": n, "publishedAt": published, "updatedAt": updated or published}}


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
        None: response([thread(4, "Great meeting", "2025-03-04T10:00:00Z", replies=4),
                        {"kind": "youtube#commentThread", "id": "broken"}], "P2"),
        "P2": response([thread(3, "Why was item 7 skipped?", "2025-03-03T10:00:00Z"),
                        thread(2, "old", "2025-03-02T10:00:00Z")], "P3"),
    }
    channel_server.route(PATH, handler=lambda r: Reply(200, pages[r.query.get("pageToken")]))
    channel_server.route("/youtube/v3/comments", Reply(200, {"items": []}))
    cursor = {"newest": "2025-03-02T10:00:00+00:00", "ids_at_newest": "cm2"}
    fetch = YouTubeConnector(5, 1).fetch(source(channel_server.url), cursor)
    assert [p.id for p in fetch.posts] == ["cm3", "cm4"]
    post = fetch.posts[1]
    assert post.url == "https://www.youtube.com/watch?v=vid1&lc=cm4"
    assert (post.author.id, post.author.name, post.engagement.likes, post.engagement.replies) == (
        "UCv4", "@viewer4", 14, 4)
    assert len(fetch.skipped) == 1 and "broken" in fetch.skipped[0]
    assert (fetch.cursor["newest"], fetch.cursor["ids_at_newest"]) == ("2025-03-04T10:00:00+00:00", "cm4")
    first: Seen = channel_server.requests_to(PATH)[0]
    assert first.query == {"part": "snippet,replies", "maxResults": "100", "order": "time",
                           "textFormat": "plainText", "videoId": "vid1", "key": "api-key"}
    assert len(channel_server.requests_to(PATH)) == 2  # P3 is never asked for


def test_rate_limit_exceeded_403_is_retried(channel_server: ChannelServer) -> None:
    waits: list[float] = []
    error = {"error": {"code": 403, "message": "Rate limit", "errors": [
        {"message": "Rate limit", "domain": "youtube.quota", "reason": "rateLimitExceeded"}]}}
    channel_server.route(PATH, Reply(403, error, {"Retry-After": "3"}),
                         Reply(200, response([thread(1, "hello", "2025-03-01T10:00:00Z")], None)))
    fetch = YouTubeConnector(5, 2, sleep=waits.append).fetch(source(channel_server.url), {})
    assert [p.id for p in fetch.posts] == ["cm1"] and waits == [3.0]


def test_replies_inline_and_beyond_are_read_and_new_ones_found_later(channel_server: ChannelServer) -> None:
    busy = thread(7, "Why is the bridge closed?", "2025-03-05T09:00:00Z", replies=3)
    busy["replies"] = {"comments": [reply("th7", 1, "Inspection, says the city", "2025-03-05T09:10:00Z")]}
    quiet = thread(8, "Thanks for streaming", "2025-03-05T10:00:00Z", replies=1)
    quiet["replies"] = {"comments": [reply("th8", 1, "+1", "2025-03-05T10:05:00Z", "2025-03-05T10:06:00Z")]}
    channel_server.route(PATH, Reply(200, response([quiet, busy], None)))
    rest = {None: {"kind": "youtube#commentListResponse", "nextPageToken": "R2", "items": [
                reply("th7", 1, "Inspection, says the city", "2025-03-05T09:10:00Z"),
                reply("th7", 2, "Until Friday", "2025-03-05T09:20:00Z")]},
            "R2": {"kind": "youtube#commentListResponse", "items": [
                reply("th7", 3, "Detour via 5th", "2025-03-05T09:30:00Z")]}}
    channel_server.route("/youtube/v3/comments", handler=lambda r: Reply(200, rest[r.query.get("pageToken")]))
    fetch = YouTubeConnector(5, 1).fetch(source(channel_server.url), {})
    assert [p.id for p in fetch.posts] == ["cm7", "th7.r1", "th7.r2", "th7.r3", "cm8", "th8.r1"]
    answer = fetch.posts[1]
    assert (answer.parent_id, answer.root_id, answer.conversation_id) == ("th7", "th7", "th7")
    assert answer.url == "https://www.youtube.com/watch?v=vid1&lc=th7.r1" and fetch.posts[0].conversation_id == "th7"
    assert fetch.posts[5].edited_at.ToJsonString() == "2025-03-05T10:06:00Z"
    assert channel_server.requests_to("/youtube/v3/comments")[0].query["parentId"] == "th7"
    # Next poll: no new thread, but th8 got a reply; only that reply comes back.
    quiet = thread(8, "Thanks for streaming", "2025-03-05T10:00:00Z", replies=2)
    quiet["replies"] = {"comments": [reply("th8", 2, "Agenda link?", "2025-03-05T11:00:00Z"),
                                     reply("th8", 1, "+1", "2025-03-05T10:05:00Z", "2025-03-05T10:06:00Z")]}
    busy["replies"] = {"comments": []}
    channel_server.route(PATH, Reply(200, response([quiet, busy], None)))
    later = YouTubeConnector(5, 1).fetch(source(channel_server.url), fetch.cursor)
    assert [p.id for p in later.posts] == ["th8.r2"]


def test_channel_discussion_threads_link_to_the_channel(channel_server: ChannelServer) -> None:
    discussion = thread(9, "Please post the meeting schedule", "2025-03-06T10:00:00Z")
    del discussion["snippet"]["videoId"], discussion["snippet"]["topLevelComment"]["snippet"]["videoId"]
    channel_server.route(PATH, Reply(200, response([discussion], None)))
    channel = SourceConfig("t1", "council", "youtube", f"{channel_server.url}/youtube/v3", {"channel_id": "UCcity"})
    (post,) = YouTubeConnector(5, 1).fetch(channel, {}).posts
    assert post.url == "https://www.youtube.com/channel/UCcity/discussion?lc=cm9" and post.source == "UCcity"
