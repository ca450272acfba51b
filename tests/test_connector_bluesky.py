"""Bluesky Jetstream over a local WebSocket: commits to posts, time_us cursor, deletes and bad frames."""

from __future__ import annotations

from typing import Any

from services.ingestion.connectors.base import SourceConfig
from services.ingestion.connectors.bluesky import BlueskyConnector
from tests.fixtures.channel_servers import JetstreamServer


def commit(time_us: int, rkey: str, text: str, operation: str = "create") -> dict[str, Any]:
    """A Jetstream commit event (github.com/bluesky-social/jetstream, README "Example events")."""
    event: dict[str, Any] = {"did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": time_us, "kind": "commit",
                             "commit": {"rev": "3l3qo2vuowo2b", "operation": operation,
                                        "collection": "app.bsky.feed.post", "rkey": rkey}}
    if operation == "create":
        event["commit"]["cid"] = "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"
        event["commit"]["record"] = {"$type": "app.bsky.feed.post", "createdAt": "2025-03-05T19:46:02.102Z",
                                     "langs": ["en"], "text": text}
    return event


def test_posts_deletes_malformed_and_cursor(jetstream_server: JetstreamServer) -> None:
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
    source = SourceConfig("t1", "dmv", "bluesky", jetstream_server.url,
                          {"keywords": "dmv, motor vehicles", "idle_s": "0.5", "window_s": "5"})
    fetch = BlueskyConnector(timeout_s=5).fetch(source, {})
    assert [p.text for p in fetch.posts] == ["The DMV line is two hours long", "Thanks DMV for the fast renewal"]
    post = fetch.posts[0]
    assert post.id == "at://did:plc:eygmaihciaxprqvxpfvl6flk/app.bsky.feed.post/3l3qo2vutsw2b"
    assert post.url == "https://bsky.app/profile/did:plc:eygmaihciaxprqvxpfvl6flk/post/3l3qo2vutsw2b"
    assert post.language == "en" and post.created_at.ToJsonString() == "2025-03-05T19:46:02.102Z"
    assert fetch.cursor == {"time_us": "1725911162329800"}
    assert len(fetch.skipped) == 3 and any("deleted" in s for s in fetch.skipped)
    assert "wantedCollections=app.bsky.feed.post" in jetstream_server.paths[0]

    # Reconnecting with the cursor replays only from that time on.
    jetstream_server.events.append(commit(1725911162329900, "3l3qo2vutsw2f", "DMV closed Friday"))
    later = BlueskyConnector(timeout_s=5).fetch(source, fetch.cursor)
    assert "cursor=1725911162329800" in jetstream_server.paths[1]
    assert [p.text for p in later.posts] == ["Thanks DMV for the fast renewal", "DMV closed Friday"]
    assert later.cursor == {"time_us": "1725911162329900"}


def test_max_events_bounds_a_session(jetstream_server: JetstreamServer) -> None:
    jetstream_server.events = [commit(1000 + n, f"k{n}", f"post {n}") for n in range(10)]
    source = SourceConfig("t1", "all", "bluesky", jetstream_server.url, {"max_events": "4", "idle_s": "1"})
    fetch = BlueskyConnector(timeout_s=5).fetch(source, {})
    assert len(fetch.posts) == 4 and fetch.cursor == {"time_us": "1003"}
