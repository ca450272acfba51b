"""Reddit listing JSON from a local server: after-pagination back to the cursor, deleted items skipped."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingestion.connectors.base import ConnectorError, SourceConfig
from services.ingestion.connectors.reddit import RedditConnector
from tests.fixtures.channel_servers import ChannelServer, Reply

NEW = "/r/Springfield/new.json"


def link(n: int, title: str, selftext: str = "", **extra: Any) -> dict[str, Any]:
    """A t3 Thing as the listing endpoints return it (reddit.com/dev/api)."""
    return {"kind": "t3", "data": {
        "id": f"p{n}", "name": f"t3_p{n}", "subreddit": "Springfield", "title": title, "selftext": selftext,
        "author": f"user{n}", "author_fullname": f"t2_u{n}", "created_utc": 1740000000.0 + n, "ups": n,
        "score": n, "num_comments": 2, "permalink": f"/r/Springfield/comments/p{n}/x/", **extra}}


def listing(children: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"after": after, "before": None, "dist": len(children),
                                        "children": children}}


def source(url: str, listing_name: str = "new") -> SourceConfig:
    return SourceConfig("t1", "sub", "reddit", url, {"subreddit": "r/Springfield", "listing": listing_name},
                        "oauth-token")


def test_pages_back_to_the_previous_newest_and_skips_deleted(channel_server: ChannelServer) -> None:
    pages = {
        None: listing([link(9, "Bus 12 late again", "every day"), link(8, "gone", "[removed]"),
                       link(7, "Snow plow?")], "t3_p7"),
        "t3_p7": listing([link(6, "Park cleanup Saturday"), link(5, "old one")], "t3_p5"),
    }
    channel_server.route(NEW, handler=lambda r: Reply(200, pages[r.query.get("after")]))
    fetch = RedditConnector(5, 1).fetch(source(channel_server.url), {"newest": "t3_p5", "created": "1740000005.0"})
    assert [p.id for p in fetch.posts] == ["t3_p6", "t3_p7", "t3_p9"]
    assert fetch.posts[2].text == "Bus 12 late again\n\nevery day"
    assert fetch.posts[2].url == "https://www.reddit.com/r/Springfield/comments/p9/x/"
    assert fetch.posts[2].author.id == "t2_u9" and fetch.posts[2].engagement.replies == 2
    assert fetch.skipped == ["t3_p8: deleted or removed"]
    assert fetch.cursor == {"newest": "t3_p9", "created": "1740000009.0"}
    sent = channel_server.requests_to(NEW)
    assert [r.query.get("after") for r in sent] == [None, "t3_p7"]
    assert sent[0].headers["authorization"] == "bearer oauth-token" and sent[0].query["raw_json"] == "1"


def test_comments_listing_and_malformed_children(channel_server: ChannelServer) -> None:
    comment = {"kind": "t1", "data": {"id": "c1", "name": "t1_c1", "body": "The pool is closed?",
                                      "author": "ann", "created_utc": 1740000100, "subreddit": "Springfield",
                                      "permalink": "/r/Springfield/comments/p9/x/c1/", "score": 4}}
    deleted = {"kind": "t1", "data": {"id": "c2", "name": "t1_c2", "body": "[deleted]", "author": "[deleted]",
                                      "created_utc": 1740000101}}
    broken = {"kind": "t1", "data": {"id": "c3", "name": "t1_c3", "author": "bob"}}
    channel_server.route("/r/Springfield/comments.json", Reply(200, listing([broken, deleted, comment], None)))
    fetch = RedditConnector(5, 1).fetch(source(channel_server.url, "comments"), {})
    assert [(p.id, p.text, p.engagement.likes) for p in fetch.posts] == [("t1_c1", "The pool is closed?", 4)]
    assert len(fetch.skipped) == 2


def test_retry_after_then_give_up(channel_server: ChannelServer) -> None:
    waits: list[float] = []
    channel_server.route(NEW, Reply(429, {"message": "Too Many Requests", "error": 429}, {"Retry-After": "2"}))
    with pytest.raises(ConnectorError, match="429"):
        RedditConnector(5, 2, sleep=waits.append).fetch(source(channel_server.url), {})
    assert waits == [2.0, 2.0] and len(channel_server.requests_to(NEW)) == 3


def test_empty_listing_keeps_the_cursor(channel_server: ChannelServer) -> None:
    channel_server.route(NEW, Reply(200, listing([], None)))
    cursor = {"newest": "t3_p9", "created": "1740000009.0"}
    assert RedditConnector(5, 1).fetch(source(channel_server.url), cursor).cursor == cursor

