"""Bluesky Jetstream over a local WebSocket: a long-lived subscription with checkpoints, inclusive replay,
deletes, bad frames, what a post record carries, and a lost connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from services.ingestion.connectors.base import ConnectorError, Fetch, SourceConfig
from services.ingestion.connectors.bluesky import BlueskySubscription
from tests.fixtures.channel_servers import DID, JetstreamServer, wait_until
from tests.fixtures.channel_servers import jetstream_commit as commit


class Run:
    """A subscription running in a thread, its checkpoints collected."""

    def __init__(self) -> None:
        self.checkpoints: list[Fetch] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def posts(self) -> list[str]:
        return [p.text for c in self.checkpoints for p in c.posts]


@contextmanager
def subscribed(source: SourceConfig, cursor: dict[str, str] | None = None) -> Iterator[Run]:
    run = Run()

    def follow() -> None:
        try:
            BlueskySubscription(timeout_s=5).run(source, cursor or {}, run.checkpoints.append, run.stop)
        except BaseException as exc:
            run.error = exc

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield run
    finally:
        run.stop.set()
        thread.join(10)


def source(url: str, **params: str) -> SourceConfig:
    return SourceConfig("t1", "dmv", "bluesky", url, {"checkpoint_s": "0.2", **params})


def test_posts_deletes_malformed_and_an_inclusive_replay_repeating_nothing(jetstream_server: JetstreamServer) -> None:
    jetstream_server.events = [
        commit(1725911162329308, "3l3qo2vutsw2b", "The DMV line is two hours long"),
        {"did": "did:plc:x", "time_us": 1725911162329400, "kind": "identity",
         "identity": {"did": "did:plc:x", "handle": "x.bsky.social", "seq": 1, "time": "2025-03-05T19:46:02Z"}},
        commit(1725911162329500, "3l3qo2vutsw2c", "", "delete"),
        "{not json",
        commit(1725911162329600, "3l3qo2vutsw2d", "My cat is cute"),
        {"did": "did:plc:y", "time_us": 1725911162329700, "kind": "commit",
         "commit": {"operation": "create", "collection": "app.bsky.feed.post", "rkey": "r", "record": {}}},
        commit(1725911162329800, "3l3qo2vutsw2e", "Thanks DMV for the fast renewal"),
    ]
    dmv = source(jetstream_server.url, keywords="dmv, motor vehicles")
    with subscribed(dmv) as run:
        wait_until(lambda: bool(run.checkpoints) and run.checkpoints[-1].cursor.get("time_us") == "1725911162329800")
    assert run.error is None
    assert run.posts() == ["The DMV line is two hours long", "Thanks DMV for the fast renewal"]
    post = run.checkpoints[0].posts[0]
    assert post.id == f"at://{DID}/app.bsky.feed.post/3l3qo2vutsw2b"
    assert post.url == f"https://bsky.app/profile/{DID}/post/3l3qo2vutsw2b"
    assert list(post.sender_languages) == ["en"] and post.created_at.ToJsonString() == "2025-03-05T19:46:02.102Z"
    assert [d for c in run.checkpoints for d in c.deleted] == [f"at://{DID}/app.bsky.feed.post/3l3qo2vutsw2c"]
    assert sum(len(c.skipped) for c in run.checkpoints) == 2
    assert "wantedCollections=app.bsky.feed.post" in jetstream_server.paths[0]
    cursor = run.checkpoints[-1].cursor

    # Jetstream replays from the cursor inclusively: the event at that time_us comes again and is skipped.
    jetstream_server.events.append(commit(1725911162329900, "3l3qo2vutsw2f", "DMV closed Friday"))
    with subscribed(dmv, cursor) as later:
        wait_until(lambda: bool(later.checkpoints))
    assert "cursor=1725911162329800" in jetstream_server.paths[1]
    assert later.posts() == ["DMV closed Friday"]
    assert later.checkpoints[-1].cursor["time_us"] == "1725911162329900"


def test_a_live_subscription_checkpoints_by_count_and_by_time(jetstream_server: JetstreamServer) -> None:
    jetstream_server.events = [commit(1000 + n, f"k{n:02}", f"post {n}") for n in range(6)]
    with subscribed(source(jetstream_server.url, checkpoint_events="4", checkpoint_s="60")) as run:
        wait_until(lambda: len(run.checkpoints) == 1)
        assert len(run.checkpoints[0].posts) == 4 and run.checkpoints[0].cursor["time_us"] == "1003"
        wait_until(lambda: jetstream_server.connected() == 1)
        for n in range(6, 8):
            jetstream_server.push(commit(1000 + n, f"k{n:02}", f"post {n}"))
        wait_until(lambda: len(run.checkpoints) == 2)  # 4 more events: posts 4 to 7, pushed while connected
    assert [p.text for p in run.checkpoints[1].posts] == ["post 4", "post 5", "post 6", "post 7"]


def test_what_a_post_record_carries(jetstream_server: JetstreamServer) -> None:
    root = "at://did:plc:root/app.bsky.feed.post/3kroot"
    jetstream_server.events = [commit(
        2000, "3lrich", "Flooding on #MainSt again, @cityhall.bsky.social see https://news.example/flood",
        reply={"root": {"uri": root, "cid": "bafyroot"}, "parent": {"uri": f"at://{DID}/app.bsky.feed.post/3kp",
                                                                    "cid": "bafyparent"}},
        facets=[{"index": {"byteStart": 12, "byteEnd": 19}, "features": [
                    {"$type": "app.bsky.richtext.facet#tag", "tag": "MainSt"}]},
                {"index": {"byteStart": 27, "byteEnd": 47}, "features": [
                    {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:cityhall"}]},
                {"index": {"byteStart": 52, "byteEnd": 78}, "features": [
                    {"$type": "app.bsky.richtext.facet#link", "uri": "https://news.example/flood"}]}],
        embed={"$type": "app.bsky.embed.images", "images": [{
            "alt": "Water up to the car doors on Main St", "aspectRatio": {"height": 3, "width": 4},
            "image": {"$type": "blob", "ref": {"$link": "bafkreiimg"}, "mimeType": "image/jpeg", "size": 1}}]},
        labels={"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "graphic-media"}]},
        tags=["flood"], langs=["en", "es"])]
    with subscribed(source(jetstream_server.url)) as run:
        wait_until(lambda: bool(run.checkpoints))
    (post,) = run.checkpoints[0].posts
    assert (post.parent_id, post.root_id, post.conversation_id) == (
        f"at://{DID}/app.bsky.feed.post/3kp", root, root)
    assert list(post.hashtags) == ["flood", "MainSt"] and list(post.mentions) == ["did:plc:cityhall"]
    assert list(post.links) == ["https://news.example/flood"] and list(post.sender_languages) == ["en", "es"]
    assert [(m.type, m.url, m.alt_text) for m in post.media] == [
        ("image", f"https://cdn.bsky.app/img/feed_fullsize/plain/{DID}/bafkreiimg@jpeg",
         "Water up to the car doors on Main St")]
    assert post.sensitive and post.content_warning == "graphic-media"


def test_a_lost_connection_keeps_what_arrived_and_says_so(jetstream_server: JetstreamServer) -> None:
    jetstream_server.events = [commit(3000, "k1", "first"), commit(3001, "k2", "second")]
    jetstream_server.hang_up = 1
    with subscribed(source(jetstream_server.url, checkpoint_s="60")) as run:
        wait_until(lambda: run.error is not None)
    assert isinstance(run.error, ConnectorError) and "connection lost" in str(run.error)
    assert run.posts() == ["first", "second"] and run.checkpoints[0].cursor["time_us"] == "3001"


def test_a_checkpoint_that_fails_ends_the_subscription_with_its_error(jetstream_server: JetstreamServer) -> None:
    jetstream_server.events = [commit(4000, "k1", "first")]

    def refuse(fetch: Fetch) -> None:
        raise RuntimeError("spool full")

    with pytest.raises(RuntimeError, match="spool full"):
        BlueskySubscription(timeout_s=5).run(source(jetstream_server.url, checkpoint_events="1"), {}, refuse,
                                             threading.Event())
