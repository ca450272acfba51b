"""Bluesky through Jetstream: app.bsky.feed.post commits as JSON over a WebSocket.

Jetstream is a firehose, so a poll is a bounded session: connect with `wantedCollections` (and
`wantedDids` when the source follows given accounts) and `cursor` = the time_us of the last event
handled, read until `max_events`, `idle_s` without an event, or `window_s`, then disconnect and keep
the last time_us. Optional `keywords` keep only posts that mention one of them. Deletes, identity
and account events are not posts; deletes are counted as skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import ConnectorError, Fetch, SourceConfig, new_post, parse_time

COLLECTION = "app.bsky.feed.post"
DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"


class BlueskyConnector:
    kind = "bluesky"

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        params = source.params
        max_events = int(params.get("max_events", 1000))
        idle_s = float(params.get("idle_s", 2.0))
        window_s = float(params.get("window_s", 10.0))
        keywords = [k.strip().lower() for k in params.get("keywords", "").split(",") if k.strip()]
        query: list[tuple[str, str]] = [("wantedCollections", COLLECTION)]
        query += [("wantedDids", did) for did in params.get("dids", "").replace(",", " ").split()]
        if cursor.get("time_us"):
            query.append(("cursor", cursor["time_us"]))
        url = f"{source.url or DEFAULT_URL}?{urlencode(query)}"
        fetch = Fetch([], dict(cursor))
        deadline = time.monotonic() + window_s
        handled = 0
        try:
            with connect(url, open_timeout=self.timeout_s, close_timeout=2) as socket:
                while handled < max_events and time.monotonic() < deadline:
                    try:
                        message = socket.recv(timeout=min(idle_s, max(0.0, deadline - time.monotonic())))
                    except TimeoutError:
                        break
                    handled += 1
                    self._handle(source, message, keywords, fetch)
        except ConnectionClosed:
            pass  # the server ended the session; what arrived is kept
        except (OSError, WebSocketException) as exc:
            raise ConnectorError(f"{source.url}: {exc}") from exc
        return fetch

    def _handle(self, source: SourceConfig, message: str | bytes, keywords: list[str], fetch: Fetch) -> None:
        try:
            event = json.loads(message)
            time_us = int(event["time_us"])
        except (ValueError, TypeError, KeyError) as exc:
            fetch.skipped.append(f"unreadable event: {exc!r}")
            return
        fetch.cursor["time_us"] = str(max(time_us, int(fetch.cursor.get("time_us", 0))))
        commit = event.get("commit") if event.get("kind") == "commit" else None
        if not isinstance(commit, dict) or commit.get("collection") != COLLECTION:
            return
        if commit.get("operation") == "delete":
            fetch.skipped.append(f"{event.get('did')}/{commit.get('rkey')}: deleted")
            return
        if commit.get("operation") != "create":
            return
        try:
            post = self._post(source, event["did"], commit)
        except (KeyError, TypeError, ValueError) as exc:
            fetch.skipped.append(f"{event.get('did')}/{commit.get('rkey')}: {exc!r}")
            return
        if not keywords or any(k in post.text.lower() for k in keywords):
            fetch.posts.append(post)

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
        langs = record.get("langs") or []
        post.language = langs[0] if langs and isinstance(langs[0], str) else ""
        return post
