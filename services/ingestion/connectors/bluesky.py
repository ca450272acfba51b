"""Bluesky through Jetstream: app.bsky.feed.post commits as JSON over a WebSocket, as they happen.

A firehose is not polled: the source is a long-lived subscription (`wantedCollections`, and
`wantedDids` when it follows given accounts) that hands what arrived to `checkpoint` every
`checkpoint_s` seconds (2) or `checkpoint_events` events (500); the scheduler ingests those posts and
deletions and only then stores the cursor, so a crash or a lost connection resumes from the last
checkpoint and loses nothing. Jetstream's replay from `cursor=<time_us>` is inclusive (it sends the
event at that time_us again), so the cursor keeps the events already handled at its time and skips
them. Optional `keywords` keep only posts that mention one of them.

Delete commits of posts are reported as deletions: what the source ingested earlier leaves search.
Identity and account events, and other collections, are not posts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import ConnectorError, Fetch, SourceConfig, new_post, parse_time

COLLECTION = "app.bsky.feed.post"
DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
CDN = "https://cdn.bsky.app/img/feed_fullsize/plain"
VIDEO = "https://video.bsky.app/watch"
# Self-labels (com.atproto.label.defs#selfLabels) that mark a post not safe for work.
SENSITIVE_LABELS = frozenset({"porn", "sexual", "nudity", "graphic-media", "gore"})
RECV_WAIT_S = 0.5

Checkpoint = Callable[[Fetch], None]


@dataclass
class JetstreamCursor:
    """The time_us of the newest event handled, and the events handled at exactly that time."""

    time_us: int = 0
    keys: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, cursor: Mapping[str, str]) -> JetstreamCursor:
        return cls(int(cursor.get("time_us") or 0), set(filter(None, cursor.get("keys_at_time", "").split("\n"))))

    def is_new(self, time_us: int, key: str) -> bool:
        return time_us > self.time_us or (time_us == self.time_us and key not in self.keys)

    def advance(self, time_us: int, key: str) -> None:
        if time_us > self.time_us:
            self.time_us, self.keys = time_us, {key}
        elif time_us == self.time_us:
            self.keys.add(key)

    def dump(self) -> dict[str, str]:
        if not self.time_us:
            return {}
        return {"time_us": str(self.time_us), "keys_at_time": "\n".join(sorted(self.keys))}


def event_key(event: Mapping[str, Any]) -> str:
    found = event.get("commit")
    commit: Mapping[str, Any] = found if isinstance(found, dict) else {}
    return "/".join(str(part) for part in (event.get("kind"), event.get("did"), commit.get("rev", ""),
                                           commit.get("rkey", ""), commit.get("operation", "")))


class BlueskySubscription:
    kind = "bluesky"

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s

    def url(self, source: SourceConfig, cursor: JetstreamCursor) -> str:
        query: list[tuple[str, str]] = [("wantedCollections", COLLECTION)]
        query += [("wantedDids", did) for did in source.params.get("dids", "").replace(",", " ").split()]
        if cursor.time_us:
            query.append(("cursor", str(cursor.time_us)))
        return f"{source.url or DEFAULT_URL}?{urlencode(query)}"

    def run(self, source: SourceConfig, cursor: Mapping[str, str], checkpoint: Checkpoint,
            stop: threading.Event) -> None:
        """Reads until `stop` is set (then returns) or the connection is lost (ConnectorError), handing
        what arrived to `checkpoint`; an error raised by `checkpoint` ends the subscription with it."""
        every_s = float(source.params.get("checkpoint_s", 2.0))
        every_events = int(source.params.get("checkpoint_events", 500))
        keywords = [k.strip().lower() for k in source.params.get("keywords", "").split(",") if k.strip()]
        seen = JetstreamCursor.load(cursor)
        batch, handled, since = Fetch([], seen.dump()), 0, time.monotonic()
        try:
            with connect(self.url(source, seen), open_timeout=self.timeout_s, close_timeout=2) as socket:
                while not stop.is_set():
                    try:
                        message = socket.recv(timeout=RECV_WAIT_S)
                    except TimeoutError:
                        message = None
                    if message is not None:
                        handled += self._handle(source, message, keywords, seen, batch)
                    if handled and (handled >= every_events or time.monotonic() - since >= every_s):
                        batch.cursor = seen.dump()
                        checkpoint(batch)
                        batch, handled, since = Fetch([], seen.dump()), 0, time.monotonic()
        except (ConnectionClosed, OSError, WebSocketException) as exc:
            if handled:  # what arrived before the connection went is kept
                batch.cursor = seen.dump()
                checkpoint(batch)
            raise ConnectorError(f"{source.url or DEFAULT_URL}: connection lost: {exc}") from exc
        if handled:
            batch.cursor = seen.dump()
            checkpoint(batch)

    def _handle(self, source: SourceConfig, message: str | bytes, keywords: list[str], seen: JetstreamCursor,
                batch: Fetch) -> int:
        """Adds one event's post or deletion to the batch; 1 if the event moved the cursor, else 0."""
        try:
            event = json.loads(message)
            time_us = int(event["time_us"])
        except (ValueError, TypeError, KeyError) as exc:
            batch.skipped.append(f"unreadable event: {exc!r}")
            return 0
        key = event_key(event)
        if not seen.is_new(time_us, key):
            return 0  # replayed: Jetstream resends the event at the cursor's own time
        seen.advance(time_us, key)
        commit = event.get("commit") if event.get("kind") == "commit" else None
        if not isinstance(commit, dict) or commit.get("collection") != COLLECTION:
            return 1
        uri = f"at://{event.get('did')}/{COLLECTION}/{commit.get('rkey')}"
        if commit.get("operation") == "delete":
            batch.deleted.append(uri)
            return 1
        if commit.get("operation") != "create":
            return 1
        try:
            post = self._post(source, str(event["did"]), commit)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            batch.skipped.append(f"{uri}: {exc!r}")
            return 1
        if not keywords or any(k in post.text.lower() for k in keywords):
            batch.posts.append(post)
        return 1

    def _post(self, source: SourceConfig, did: str, commit: dict[str, Any]) -> post_pb2.Post:
        record = commit["record"]
        text = record["text"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty text")
        rkey = commit["rkey"]
        post = new_post(source, f"at://{did}/{COLLECTION}/{rkey}", text, parse_time(record["createdAt"]))
        post.source = source.params.get("keywords", "") or "jetstream"
        post.url = f"https://bsky.app/profile/{did}/post/{rkey}"
        post.author.id = did
        post.sender_languages.extend(lang for lang in record.get("langs") or [] if isinstance(lang, str))
        describe(post, did, record)
        return post


def describe(post: post_pb2.Post, did: str, record: Mapping[str, Any]) -> None:
    """Reply threading, facets (hashtags, mentions, links), embeds (images and video with their alt
    text, link cards) and self-labels of an app.bsky.feed.post record."""
    reply = record.get("reply") or {}
    post.parent_id = str((reply.get("parent") or {}).get("uri") or "")
    post.root_id = str((reply.get("root") or {}).get("uri") or "")
    post.conversation_id = post.root_id or post.id
    post.hashtags.extend(str(tag) for tag in record.get("tags") or [])
    for facet in record.get("facets") or []:
        for feature in facet.get("features") or []:
            kind = str(feature.get("$type", ""))
            if kind.endswith("#tag") and feature.get("tag"):
                post.hashtags.append(str(feature["tag"]))
            elif kind.endswith("#mention") and feature.get("did"):
                post.mentions.append(str(feature["did"]))
            elif kind.endswith("#link") and feature.get("uri"):
                post.links.append(str(feature["uri"]))
    embed = record.get("embed") or {}
    _embed(post, did, embed.get("media") or embed)  # recordWithMedia: a quote with images or video
    labels = [str(v.get("val")) for v in (record.get("labels") or {}).get("values") or [] if v.get("val")]
    post.sensitive = bool(SENSITIVE_LABELS & set(labels))
    post.content_warning = ", ".join(labels)


def _embed(post: post_pb2.Post, did: str, embed: Mapping[str, Any]) -> None:
    kind = str(embed.get("$type", ""))
    if kind == "app.bsky.embed.images":
        for image in embed.get("images") or []:
            cid = ((image.get("image") or {}).get("ref") or {}).get("$link")
            post.media.add(type="image", url=f"{CDN}/{did}/{cid}@jpeg" if cid else "",
                           alt_text=str(image.get("alt") or ""))
    elif kind == "app.bsky.embed.video":
        cid = ((embed.get("video") or {}).get("ref") or {}).get("$link")
        post.media.add(type="video", url=f"{VIDEO}/{did}/{cid}/playlist.m3u8" if cid else "",
                       alt_text=str(embed.get("alt") or ""))
    elif kind == "app.bsky.embed.external":
        uri = str((embed.get("external") or {}).get("uri") or "")
        if uri and uri not in post.links:
            post.links.append(uri)
