"""Mastodon hashtag timeline from a local server: min_id cursor, Link pagination, boosts, bad statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from services.ingestion.connectors.base import SourceConfig
from services.ingestion.connectors.mastodon import MastodonConnector
from tests.fixtures.channel_servers import ChannelServer, Reply, Seen

PATH = "/api/v1/timelines/tag/potholes"


def status(status_id: str, content: str, **extra: Any) -> dict[str, Any]:
    """A Status entity as documented at docs.joinmastodon.org/entities/Status/."""
    return {
        "id": status_id, "created_at": f"2025-03-0{int(status_id[-1]) % 9 + 1}T08:00:00.000Z",
        "in_reply_to_id": None, "sensitive": False, "spoiler_text": "", "visibility": "public",
        "language": "en", "uri": f"https://social.example/users/ann/statuses/{status_id}",
        "url": f"https://social.example/@ann/{status_id}", "replies_count": 1, "reblogs_count": 2,
        "favourites_count": 3, "content": content, "reblog": None,
        "account": {"id": "1001", "username": "ann", "acct": "ann@social.example", "display_name": "Ann",
                    "followers_count": 42},
        "media_attachments": [], "mentions": [], "tags": [{"name": "potholes"}], **extra,
    }


def source(url: str, secret: str = "") -> SourceConfig:
    return SourceConfig("t1", "potholes", "mastodon", url, {"hashtag": "#potholes"}, secret)


def test_first_poll_takes_the_newest_page(channel_server: ChannelServer) -> None:
    channel_server.route(PATH, Reply(200, [
        status("103", "<p>Huge <a href='x'>#potholes</a> on Main St</p>"),
        status("102", ""),  # media only
        {"unexpected": True},
        status("101", "<p>Fixed!<br>Thanks</p>"),
    ]))
    fetch = MastodonConnector(5, 1).fetch(source(channel_server.url, "tok"), {})
    assert [p.id for p in fetch.posts] == ["101", "103"]
    assert fetch.posts[1].text == "Huge #potholes on Main St"
    assert fetch.posts[0].text == "Fixed!\nThanks"
    post = fetch.posts[1]
    assert (post.author.id, post.author.name, post.author.follower_count) == ("1001", "ann@social.example", 42)
    assert (post.engagement.likes, post.engagement.shares, post.engagement.replies) == (3, 2, 1)
    assert post.url == "https://social.example/@ann/103" and list(post.sender_languages) == ["en"]
    assert fetch.cursor["min_id"] == "103"
    assert len(fetch.skipped) == 2
    seen = channel_server.requests_to(PATH)[0]
    assert seen.headers["authorization"] == "Bearer tok" and seen.query["limit"] == "40"


def test_later_polls_page_forward_from_min_id_with_link_prev(channel_server: ChannelServer) -> None:
    def timeline(request: Seen) -> Reply:
        pages = {
            "103": ([status("105", "five"), status("104", "four")], "105"),
            "105": ([status("999106", "boosted", reblog=status("106", "the original"))], "999106"),
            "999106": ([], None),
        }
        page, newest = pages[request.query["min_id"]]
        link = f'<{channel_server.url}{PATH}?min_id={newest}>; rel="prev"' if newest else ""
        return Reply(200, page, {"Link": link} if link else {})

    channel_server.route(PATH, handler=timeline)
    fetch = MastodonConnector(5, 1).fetch(source(channel_server.url), {"min_id": "103"})
    assert [p.id for p in fetch.posts] == ["104", "105", "106"]
    assert fetch.posts[2].text == "the original"
    assert fetch.cursor["min_id"] == "999106"
    assert [r.query["min_id"] for r in channel_server.requests_to(PATH)] == ["103", "105", "999106"]


def test_rate_limit_without_retry_after_backs_off_with_jitter(channel_server: ChannelServer) -> None:
    waits: list[float] = []
    channel_server.route(PATH, Reply(429, {"error": "Too many requests"}), Reply(503, ""),
                         Reply(200, [status("107", "ok")]))
    fetch = MastodonConnector(5, 3, sleep=waits.append).fetch(source(channel_server.url), {})
    assert [p.id for p in fetch.posts] == ["107"]
    assert len(waits) == 2 and 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0


def test_a_status_carries_threading_marks_tags_mentions_media_and_links(channel_server: ChannelServer) -> None:
    reply = status(
        "201", '<p><span class="h-card"><a href="https://gov.example/@cityhall" class="u-url mention">@<span>'
        'cityhall</span></a></span> the <a href="https://social.example/tags/potholes" class="mention hashtag" '
        'rel="tag">#<span>potholes</span></a> on Elm: <a href="https://maps.example/elm" rel="nofollow">'
        'map</a></p>',
        in_reply_to_id="150", sensitive=True, spoiler_text="road damage", edited_at="2025-03-02T09:30:00.000Z",
        language="en-GB", tags=[{"name": "potholes", "url": "https://social.example/tags/potholes"}],
        mentions=[{"id": "9", "username": "cityhall", "acct": "cityhall@gov.example", "url": "https://gov.example/@cityhall"}],
        media_attachments=[{"id": "m1", "type": "gifv", "url": "https://files.example/m1.mp4",
                            "description": "Car tyre dropping into a pothole"}],
        card={"url": "https://news.example/elm-street", "title": "Elm Street works"})
    photo = status("202", "", media_attachments=[
        {"id": "m2", "type": "image", "url": "https://files.example/m2.jpg",
         "description": "A flooded underpass with a stalled bus"}])
    channel_server.route(PATH, Reply(200, [photo, reply]))
    fetch = MastodonConnector(5, 1).fetch(source(channel_server.url), {})
    answered, pictured = fetch.posts
    assert (answered.parent_id, answered.conversation_id, answered.sensitive) == ("150", "", True)
    assert answered.content_warning == "road damage" and answered.text.startswith("road damage\n\n")
    assert answered.edited_at.ToJsonString() == "2025-03-02T09:30:00Z"
    assert list(answered.hashtags) == ["potholes"] and list(answered.mentions) == ["cityhall@gov.example"]
    assert [(m.type, m.url, m.alt_text) for m in answered.media] == [
        ("video", "https://files.example/m1.mp4", "Car tyre dropping into a pothole")]
    assert list(answered.links) == ["https://maps.example/elm", "https://news.example/elm-street"]
    assert list(answered.sender_languages) == ["en-GB"] and answered.language == ""
    # A photo without words is kept, in the words of its description.
    assert pictured.text == "A flooded underpass with a stalled bus" and pictured.conversation_id == "202"


def test_statuses_gone_on_recheck_are_reported_deleted(channel_server: ChannelServer) -> None:
    fresh = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    channel_server.route(PATH, Reply(200, [status("302", "Bus shelter smashed", created_at=fresh),
                                           status("301", "Thanks for the fix", created_at=fresh)]))
    first = MastodonConnector(5, 1).fetch(source(channel_server.url), {})
    assert sorted(i for i, _ in json.loads(first.cursor["recent"])) == ["301", "302"]
    # Mastodon 4.3+: the statuses that still exist come back, the deleted one does not.
    channel_server.route(PATH, Reply(200, []))
    channel_server.route("/api/v1/statuses", Reply(200, [status("301", "Thanks for the fix", created_at=fresh)]))
    later = MastodonConnector(5, 1).fetch(source(channel_server.url), first.cursor)
    assert later.deleted == ["302"] and [i for i, _ in json.loads(later.cursor["recent"])] == ["301"]
    asked = channel_server.requests_to("/api/v1/statuses")[0]
    assert sorted(asked.query_lists["id[]"]) == ["301", "302"]
    # An older server without the batch endpoint: one GET per status, 404 when deleted.
    channel_server.route("/api/v1/statuses", Reply(404, {"error": "Record not found"}))
    channel_server.route("/api/v1/statuses/301", Reply(404, {"error": "Record not found"}))
    oldest = MastodonConnector(5, 1).fetch(source(channel_server.url), later.cursor)
    assert oldest.deleted == ["301"]
