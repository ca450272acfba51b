"""Reddit listing JSON from a local server: after-pagination back to the cursor, deleted items skipped."""

from __future__ import annotations

import json
import time
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
    assert fetch.cursor["newest"] == "2025-02-19T21:20:09+00:00" and fetch.cursor["ids_at_newest"] == "t3_p9"
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
    cursor = {"newest": "2025-02-19T21:20:09+00:00", "ids_at_newest": "t3_p9", "recent": "[]"}
    assert RedditConnector(5, 1).fetch(source(channel_server.url), cursor).cursor == cursor


def test_items_sharing_the_newest_second_are_neither_repeated_nor_lost(channel_server: ChannelServer) -> None:
    same: dict[str, Any] = {"created_utc": 1740000100.0}
    channel_server.route(NEW, Reply(200, listing([link(11, "Second at 100", **same), link(10, "First at 100", **same),
                                                  link(9, "Earlier")], None)))
    first = RedditConnector(5, 1).fetch(source(channel_server.url), {})
    assert [p.id for p in first.posts] == ["t3_p9", "t3_p10", "t3_p11"]
    # The next listing re-serves them and one more item filed in the same second.
    channel_server.route(NEW, Reply(200, listing([link(12, "Third at 100", **same), link(11, "Second at 100", **same),
                                                  link(10, "First at 100", **same), link(9, "Earlier")], None)))
    again = RedditConnector(5, 1).fetch(source(channel_server.url), first.cursor)
    assert [p.id for p in again.posts] == ["t3_p12"]
    assert again.cursor["ids_at_newest"] == "t3_p10\nt3_p11\nt3_p12"


def test_real_comment_shapes_deleted_authors_entities_and_missing_permalinks(channel_server: ChannelServer) -> None:
    orphan = {"kind": "t1", "data": {  # the account is deleted, the comment is not
        "id": "kx1", "name": "t1_kx1", "body": "The crossing light on 5th has been broken for weeks &#x200B;",
        "author": "[deleted]", "created_utc": 1740000200.0, "subreddit": "Springfield", "link_id": "t3_p9",
        "parent_id": "t1_kx0", "score": 3, "edited": 1740000300.0, "permalink": "/r/Springfield/comments/p9/x/kx1/"}}
    bare = {"kind": "t1", "data": {  # as /api/info and some listings serve it: no permalink
        "id": "kx2", "name": "t1_kx2", "body": "Agreed &amp; reported it to 311", "author": "ann",
        "author_fullname": "t2_ann", "created_utc": 1740000201.0, "subreddit": "Springfield", "link_id": "t3_p9",
        "parent_id": "t3_p9", "score": 1, "edited": False}}
    removed = {"kind": "t1", "data": {"id": "kx3", "name": "t1_kx3", "body": "[removed]", "author": "[deleted]",
                                      "created_utc": 1740000202.0, "link_id": "t3_p9"}}
    channel_server.route("/r/Springfield/comments.json", Reply(200, listing([removed, bare, orphan], None)))
    fetch = RedditConnector(5, 1).fetch(source(channel_server.url, "comments"), {})
    orphaned, plain = fetch.posts
    assert orphaned.text == "The crossing light on 5th has been broken for weeks \u200b"
    assert (orphaned.author.id, orphaned.author.name) == ("", "")
    assert (orphaned.parent_id, orphaned.root_id, orphaned.conversation_id) == ("t1_kx0", "t3_p9", "t3_p9")
    assert orphaned.edited_at.ToSeconds() == 1740000300 and not plain.HasField("edited_at")
    assert plain.text == "Agreed & reported it to 311"
    assert plain.url == "https://www.reddit.com/r/Springfield/comments/p9/_/kx2/"
    assert fetch.skipped == ["t1_kx3: deleted or removed"]


def test_link_posts_carry_target_preview_flair_and_marks(channel_server: ChannelServer) -> None:
    post = link(20, "Council agenda &amp; minutes", is_self=False, url="https://springfield.example/agenda.pdf",
                over_18=False, spoiler=True, link_flair_text="Local Politics",
                preview={"images": [{"source": {"url": "https://preview.redd.it/a.jpg?s=1&amp;w=2", "width": 640}}]})
    nsfw = link(21, "Crash on I-90 (graphic)", "Photos inside", over_18=True)
    channel_server.route(NEW, Reply(200, listing([nsfw, post], None)))
    agenda, crash = RedditConnector(5, 1).fetch(source(channel_server.url), {}).posts
    assert agenda.text == "Council agenda & minutes" and list(agenda.links) == ["https://springfield.example/agenda.pdf"]
    assert [m.url for m in agenda.media] == ["https://preview.redd.it/a.jpg?s=1&w=2"]
    assert (agenda.content_warning, list(agenda.categories), agenda.conversation_id) == (
        "spoiler", ["Local Politics"], "t3_p20")
    assert crash.sensitive and not agenda.sensitive


def test_posts_whose_bodies_turn_deleted_or_removed_are_reported_deleted(channel_server: ChannelServer) -> None:
    now = time.time()
    channel_server.route(NEW, Reply(200, listing([link(31, "Trash pickup missed", "again", created_utc=now - 60),
                                                  link(30, "Pool open?", "asking", created_utc=now - 120)], None)))
    first = RedditConnector(5, 1).fetch(source(channel_server.url), {})
    assert [p.id for p in first.posts] == ["t3_p30", "t3_p31"]
    assert [name for name, _ in json.loads(first.cursor["recent"])] == ["t3_p31", "t3_p30"]
    # A later poll: nothing new, and /api/info shows one body deleted by its author.
    channel_server.route(NEW, Reply(200, listing([link(31, "Trash pickup missed", "again", created_utc=now - 60),
                                                  link(30, "Pool open?", "asking", created_utc=now - 120)], None)))
    channel_server.route("/api/info.json", Reply(200, listing([
        link(31, "Trash pickup missed", "[deleted]", author="[deleted]", created_utc=now - 60),
        link(30, "Pool open?", "asking", created_utc=now - 120)], None)))
    later = RedditConnector(5, 1).fetch(source(channel_server.url), first.cursor)
    assert later.posts == [] and later.deleted == ["t3_p31"]
    assert channel_server.requests_to("/api/info.json")[0].query["id"] == "t3_p31,t3_p30"
    assert [name for name, _ in json.loads(later.cursor["recent"])] == ["t3_p30"]

