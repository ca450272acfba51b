"""The one interface every channel connector implements, and what connectors share.

A connector is a pure "pull": given a source's configuration and its last cursor, it fetches what is
new from the channel and returns Posts plus the cursor to persist. It never ingests itself: the
scheduler hands the posts to the same domain path as IngestPosts and stores the cursor only once the
posts are durably accepted, so a crash in between re-fetches (and the spool drops the duplicates)
instead of losing posts.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from html.parser import HTMLParser
from typing import Protocol

from civic.listening.v1 import post_pb2


@dataclass(frozen=True)
class SourceConfig:
    """What a connector needs to know about a source; the secret is only ever read here."""

    tenant: str
    name: str
    kind: str
    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    secret: str = ""


@dataclass
class Fetch:
    """One poll's outcome: new posts (oldest first), the cursor to persist, skipped entries, and the
    ids of posts the channel says were deleted since (their authors' wish, carried out downstream)."""

    posts: list[post_pb2.Post]
    cursor: dict[str, str]
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


class Connector(Protocol):
    """Pulls new posts of one channel kind. Malformed or deleted entries go to Fetch.skipped."""

    kind: str

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch: ...


class Subscription(Protocol):
    """Follows a channel that pushes (a firehose) until `stop` is set: hands what arrived to
    `checkpoint` (which ingests it and stores `Fetch.cursor`), and raises ConnectorError when the
    connection is lost, for the caller to reconnect from the last checkpoint."""

    kind: str

    def run(self, source: SourceConfig, cursor: Mapping[str, str], checkpoint: Callable[[Fetch], None],
            stop: threading.Event) -> None: ...


class ConnectorError(Exception):
    """The channel could not be read this time (HTTP error, refused token, rate limit exhausted)."""


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; block-level breaks become newlines."""

    _BREAKS = frozenset({"br", "p", "div", "li", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Mastodon, RSS and YouTube send HTML; the Post carries what a reader sees."""
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


def parse_time(value: str, zone: tzinfo = UTC) -> datetime:
    """ISO 8601 with 'Z' or an offset, as every JSON channel here sends; naive means `zone` (UTC
    unless the source says where its server's clock is)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def new_post(source: SourceConfig, post_id: str, text: str, created_at: datetime) -> post_pb2.Post:
    post = post_pb2.Post(id=post_id, tenant=source.tenant, channel=source.kind, text=text)
    post.created_at.FromDatetime(created_at.astimezone(UTC))
    return post


def require(params: Mapping[str, str], name: str, kind: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise ValueError(f"params.{name}: required for {kind} sources")
    return value


@dataclass
class TimeCursor:
    """Newest timestamp seen plus the ids seen at exactly that time.

    Channels paged by time (feeds, YouTube, Open311) can publish two entries in the same second; a
    strict "newer than" would lose the second one and a "not older than" would resend the first.
    """

    newest: datetime | None = None
    ids_at_newest: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, cursor: Mapping[str, str]) -> TimeCursor:
        newest = cursor.get("newest")
        ids = cursor.get("ids_at_newest", "")
        return cls(parse_time(newest) if newest else None, set(filter(None, ids.split("\n"))))

    def is_new(self, when: datetime, post_id: str) -> bool:
        if self.newest is None or when > self.newest:
            return True
        return when == self.newest and post_id not in self.ids_at_newest

    def advance(self, when: datetime, post_id: str) -> None:
        if self.newest is None or when > self.newest:
            self.newest, self.ids_at_newest = when, {post_id}
        elif when == self.newest:
            self.ids_at_newest.add(post_id)

    def dump(self) -> dict[str, str]:
        if self.newest is None:
            return {}
        return {"newest": self.newest.isoformat(), "ids_at_newest": "\n".join(sorted(self.ids_at_newest))}
