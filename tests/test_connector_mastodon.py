"""Mastodon hashtag timeline from a local server: min_id cursor, Link pagination, boosts, bad statuses."""

from __future__ import annotations

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
    assert post.url == "https://social.example/@ann/103" and post.language == "en"
    assert fetch.cursor == {"min_id": "103"}
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
    assert fetch.cursor == {"min_id": "999106"}
    assert [r.query["min_id"] for r in channel_server.requests_to(PATH)] == ["103", "105", "999106"]


def test_rate_limit_without_retry_after_backs_off_with_jitter(channel_server: ChannelServer) -> None:
    waits: list[float] = []
    channel_server.route(PATH, Reply(429, {"error": "Too many requests"}), Reply(503, ""),
                         Reply(200, [status("107", "ok")]))
    fetch = MastodonConnector(5, 3, sleep=waits.append).fetch(source(channel_server.url), {})
    assert [p.id for p in fetch.posts] == ["107"]
    assert len(waits) == 2 and 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0
