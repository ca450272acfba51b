"""Polls active sources at their interval and ingests what connectors bring, through the same domain
path as IngestPosts (validation, normalization, duplicate checks, the spool).

A source's cursor is stored only after every post of the poll was durably accepted (or found a
duplicate): a crash or a full spool between fetch and spool makes the next poll fetch the same posts
again, and the spool's exact-duplicate check keeps them from being stored twice. Webhook pushes take
the same path through `receive_push`. Sources that stream (Bluesky) are not polled: each active one
has a subscription (streams.py) whose checkpoints take the same path.

Connectors' posts are fitted into the Post limits first (a long alt text is cut, the post is kept),
and the deletions they saw are carried out like DeletePosts: tombstones in the spool, removal from
search by the forwarder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from civic.listening.v1 import ingestion_pb2, post_pb2
from services.common.errors import DomainError, InvalidArgument, NotFound
from services.common.settings import Settings
from services.ingestion.connectors import WEBHOOK, connector_for, subscription_for
from services.ingestion.connectors.base import Connector, ConnectorError, Fetch, SourceConfig
from services.ingestion.connectors.webhook import parse as parse_push
from services.ingestion.connectors.webhook import verify
from services.ingestion.post_fields import fit
from services.ingestion.sources import PAUSED, PollOutcome, SourceStore
from services.ingestion.streams import Follower

log = logging.getLogger(__name__)

Ingest = Callable[[Sequence[post_pb2.Post]], ingestion_pb2.IngestPostsResponse]
Delete = Callable[[str, Sequence[post_pb2.PostRef]], ingestion_pb2.DeletePostsResponse]


class SourcePaused(DomainError):
    """A push arrived for a paused source; the sender should retry later."""


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        store: SourceStore,
        ingest: Ingest,
        delete: Delete,
        connectors: Mapping[str, Connector] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ingest = ingest
        self.delete = delete
        self._connectors = dict(connectors or {})
        self._followers: dict[str, Follower] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def connector(self, kind: str) -> Connector:
        if kind not in self._connectors:
            self._connectors[kind] = connector_for(kind, self.settings)
        return self._connectors[kind]

    def _ingest_all(self, config: SourceConfig, fetch: Fetch) -> PollOutcome:
        """Ingests in batches, then the deletions; raises (ResourceExhausted) if the spool refuses a
        batch, storing no cursor."""
        accepted = duplicates = rejected = deleted = 0
        size = self.settings.max_batch_posts
        for post in fetch.posts:
            fit(post)
        for start in range(0, len(fetch.posts), size):
            reply = self.ingest(fetch.posts[start : start + size])
            accepted, duplicates = accepted + reply.accepted, duplicates + reply.duplicates
            rejected += reply.rejected
        for start in range(0, len(fetch.deleted), size):
            refs = [post_pb2.PostRef(channel=config.kind, id=i) for i in fetch.deleted[start : start + size]]
            deleted += self.delete(config.tenant, refs).deleted
        return PollOutcome(accepted, duplicates, rejected, len(fetch.skipped), deleted=deleted)

    def follow_subscriptions(self) -> set[str]:
        """Opens a subscription for each active streaming source that has none, and closes those of
        sources no longer active; returns the sources followed."""
        wanted = set(self.store.subscriptions())
        for source_id in set(self._followers) - wanted:
            self._followers.pop(source_id).stop()
        for source_id in wanted - set(self._followers):
            config, _, _ = self.store.config(source_id)
            subscription = subscription_for(config.kind, self.settings)
            self._followers[source_id] = Follower(source_id, self.store, subscription, self._ingest_all).start()
        return wanted

    def poll(self, source_id: str, now: float | None = None) -> PollOutcome:
        """One poll of one source; its errors are recorded on the source, never raised."""
        config, cursor, _ = self.store.config(source_id)
        try:
            fetch = self.connector(config.kind).fetch(config, cursor)
            outcome = self._ingest_all(config, fetch)
        except (ConnectorError, DomainError, ValueError) as exc:
            outcome = PollOutcome(error=str(exc) or type(exc).__name__)
            log.warning("source %s (%s) poll failed: %s", source_id, config.kind, outcome.error)
            self.store.record(source_id, outcome, None, time.time() if now is None else now)
            return outcome
        for reason in fetch.skipped:
            log.info("source %s skipped %s", source_id, reason)
        self.store.record(source_id, outcome, fetch.cursor, time.time() if now is None else now)
        return outcome

    def poll_due(self, now: float | None = None) -> int:
        due = self.store.due(time.time() if now is None else now)
        for source_id in due:
            if self._stop.is_set():
                break
            self.poll(source_id, now)
        return len(due)

    def receive_push(
        self, source_id: str, body: bytes, signature: str | None
    ) -> ingestion_pb2.IngestPostsResponse:
        """A webhook delivery: verified against the source's secret, then ingested like IngestPosts.

        Raises NotFound, BadSignature, SourcePaused, InvalidArgument or ResourceExhausted.
        """
        config, _, state = self.store.config(source_id)
        if config.kind != WEBHOOK:
            raise NotFound(f"webhook source {source_id!r}")
        verify(config.secret, body, signature)
        if state == PAUSED:
            raise SourcePaused(f"source {source_id} is paused")
        try:
            fetch = parse_push(config, body)
        except ValueError as exc:
            raise InvalidArgument("body", str(exc)) from exc
        if not fetch.posts:
            raise InvalidArgument("body.posts", "; ".join(fetch.skipped) or "must contain at least one post")
        reply = self.ingest(fetch.posts)
        self.store.record(source_id, PollOutcome(reply.accepted, reply.duplicates, reply.rejected,
                                                 len(fetch.skipped)), None, time.time())
        return reply

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.follow_subscriptions()
                self.poll_due()
            except Exception:  # a bug in one poll must not end polling for every source
                log.exception("source scheduler round failed")
            self._stop.wait(self.settings.source_poll_tick_s)

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._run, name="source-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        followers = list(self._followers.values())
        for follower in followers:
            follower.stop()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.connector_timeout_s + 5)
        for follower in followers:
            follower.join(self.settings.connector_timeout_s + 5)
