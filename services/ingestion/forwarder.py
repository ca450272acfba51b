"""Drains the spool downstream: Enrich, then IndexPosts, then EvaluatePosts, then marks the posts done.

At-least-once: a post leaves the pending state only after all three calls succeeded (or a downstream
refused that one post as invalid), so a crash in between resends it; indexing is idempotent by
document id. Each stage is retried on its own, so an alerting outage does not re-run the models.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import grpc

from civic.listening.v1 import (
    alerting_pb2,
    alerting_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    post_pb2,
    search_pb2,
    search_pb2_grpc,
)
from services.common import telemetry
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.ingestion.spool import Spool, SpooledPost

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 10.0
IDLE_POLL_S = 0.25
# How often forwarded posts past the retention period are removed from the spool.
PRUNE_INTERVAL_S = 600.0
MAX_ENRICH_POSTS = 256
# Deletions carried out per round (RemovePosts takes up to 5,000 posts of a tenant).
MAX_REMOVALS = 1000


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped.

    The fixed half guarantees that a hard-down dependency is not hammered; the random half keeps
    several ingestion replicas from retrying in lockstep.
    """
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 30))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class Refused(Exception):
    """A downstream call judged its whole request invalid: retrying the same request cannot help."""


class Stopping(Exception):
    """The forwarder was asked to stop while waiting to retry."""


class Forwarder:
    """A background thread forwarding spooled posts in acceptance order."""

    def __init__(self, settings: Settings, spool: Spool, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.spool = spool
        self.batch_size = max(1, settings.forward_batch_size)
        self.enrich_chunk = max(1, min(MAX_ENRICH_POSTS, settings.inference_max_request_posts))
        self._timeout = settings.rpc_timeout_s
        self._rng = rng or random.Random()
        self._retention_s = settings.spool_retention_days * 86400
        self._next_prune = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error_lock = threading.Lock()
        self._last_error = ""
        self._channels = [
            channel(target, settings)
            for target in (settings.inference_target, settings.search_target, settings.alerting_target)
        ]
        self._inference = inference_pb2_grpc.InferenceServiceStub(self._channels[0])
        self._search = search_pb2_grpc.SearchServiceStub(self._channels[1])
        self._alerting = alerting_pb2_grpc.AlertingServiceStub(self._channels[2])

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Forwarder:
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        self._thread.start()
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        """Lets the batch in flight finish for grace_s, then cancels it: it stays pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(grace_s)
        for chan in self._channels:
            chan.close()
        if self._thread is not None:
            self._thread.join(grace_s)

    def last_error(self) -> str:
        with self._error_lock:
            return self._last_error

    def _set_error(self, error: str) -> None:
        with self._error_lock:
            self._last_error = error

    # --- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._prune_when_due()
            batch = self.spool.next_batch(self.batch_size)
            try:
                if batch:
                    self.forward(batch)
                # After the batch: a post deleted while it was on its way is removed once it got there.
                removed = self.remove_deleted()
            except Stopping:
                return
            except Exception as exc:  # a bug must not kill the thread and silently stop forwarding
                log.exception("forwarder failed on a batch; retrying")
                self._set_error(f"{type(exc).__name__}: {exc}")
                self._stop.wait(BACKOFF_CAP_S)
                continue
            if not batch and not removed:
                self._stop.wait(IDLE_POLL_S)

    def _prune_when_due(self) -> None:
        if not self._retention_s or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        try:
            removed = self.spool.prune(time.time() - self._retention_s)
        except Exception:  # a busy or full disk must not stop forwarding; the next round tries again
            log.exception("pruning the spool failed")
            return
        if removed:
            log.info("removed %d posts forwarded over %g days ago from the spool", removed,
                     self.settings.spool_retention_days)

    def forward(self, batch: Sequence[SpooledPost]) -> None:
        """Sends one batch through the three stages and records each post's end state."""
        # Joins the trace stored with the posts (even after a restart), linking the other posts'.
        traces = [spooled.trace_context for spooled in batch]
        with telemetry.span_joining("forward_posts", traces, tracer_name=__name__) as span:
            if span.is_recording():
                telemetry.describe_batch(span, [post_pb2.Post.FromString(s.payload) for s in batch])
            telemetry.record_batch("forward", len(batch))
            try:
                forwarded, failed = self._forward_all(batch)
            except Refused as exc:
                if len(batch) == 1:
                    forwarded, failed = [], {batch[0].seq: str(exc)}
                else:
                    forwarded, failed = self._forward_one_by_one(batch)
        self.spool.mark_forwarded(forwarded, failed)
        telemetry.count_dead_lettered(len(failed))
        self._set_error("")
        if failed:
            log.warning("downstream refused %d posts: %s", len(failed), sorted(set(failed.values()))[:5])

    def remove_deleted(self) -> int:
        """Carries out the deletions waiting in the spool (RemovePosts per tenant); returns how many."""
        deletions = self.spool.next_deletions(MAX_REMOVALS)
        tenants: dict[str, list[post_pb2.PostRef]] = {}
        for deletion in deletions:
            tenants.setdefault(deletion.tenant, []).append(post_pb2.PostRef(channel=deletion.channel,
                                                                            id=deletion.post_id))
        for tenant, refs in tenants.items():
            request = search_pb2.RemovePostsRequest(tenant=tenant, posts=refs)
            try:
                reply = self._call("RemovePosts", partial(self._search.RemovePosts, request, timeout=self._timeout))
            except Refused as exc:  # the tombstone stays; retrying the same request cannot help
                log.error("tenant %s: %d deletions refused downstream: %s", tenant, len(refs), exc)
                continue
            log.info("tenant %s: %d deleted posts removed (%d documents, %d dead letters, %d marks)", tenant,
                     len(refs), reply.removed, reply.dead_letters_removed, reply.marks_cleared)
        self.spool.mark_deleted([deletion.seq for deletion in deletions])
        if deletions:
            self._set_error("")
        return len(deletions)

    def _forward_one_by_one(self, batch: Sequence[SpooledPost]) -> tuple[list[int], dict[int, str]]:
        """Isolates the posts that made a whole request invalid, so they do not block the queue."""
        forwarded: list[int] = []
        failed: dict[int, str] = {}
        for spooled in batch:
            try:
                done, refused = self._forward_all([spooled])
            except Refused as exc:
                done, refused = [], {spooled.seq: str(exc)}
            forwarded += done
            failed.update(refused)
        return forwarded, failed

    def _forward_all(self, batch: Sequence[SpooledPost]) -> tuple[list[int], dict[int, str]]:
        posts = [post_pb2.Post.FromString(spooled.payload) for spooled in batch]
        enriched = [
            post_pb2.EnrichedPost(post=post, enrichment=enrichment)
            for post, enrichment in zip(posts, self._enrich(posts), strict=True)
        ]
        telemetry.count_posts("enriched", posts)
        refused = self._index(enriched)
        failed = {
            spooled.seq: f"IndexPosts: {refused[post.id]}"
            for spooled, post in zip(batch, posts, strict=True)
            if post.id in refused
        }
        to_evaluate = [e for spooled, e in zip(batch, enriched, strict=True) if spooled.seq not in failed]
        telemetry.count_posts("indexed", [e.post for e in to_evaluate])
        if to_evaluate:
            request = alerting_pb2.EvaluatePostsRequest(posts=to_evaluate)
            self._call("EvaluatePosts", lambda: self._alerting.EvaluatePosts(request, timeout=self._timeout))
        return [spooled.seq for spooled in batch if spooled.seq not in failed], failed

    def _enrich(self, posts: Sequence[post_pb2.Post]) -> list[post_pb2.Enrichment]:
        enrichments: list[post_pb2.Enrichment] = []
        for start in range(0, len(posts), self.enrich_chunk):
            request = inference_pb2.EnrichRequest(posts=posts[start : start + self.enrich_chunk])
            reply = self._call("Enrich", partial(self._inference.Enrich, request, timeout=self._timeout))
            if len(reply.enrichments) != len(request.posts):
                raise Refused(f"Enrich: {len(reply.enrichments)} enrichments for {len(request.posts)} posts")
            enrichments.extend(reply.enrichments)
        return enrichments

    def _index(self, enriched: Sequence[post_pb2.EnrichedPost]) -> dict[str, str]:
        """Indexes the posts and gives each the topics search tagged it with (its tenant's, which alerting
        must see too); returns the ids the cluster refused, with reasons."""
        request = search_pb2.IndexPostsRequest(posts=enriched)
        reply = self._call("IndexPosts", lambda: self._search.IndexPosts(request, timeout=self._timeout))
        if len(reply.tagged) == len(enriched):
            for post, tagged in zip(enriched, reply.tagged, strict=True):
                if tagged.id == post.post.id:
                    apply_topics(post.enrichment, tagged)
        return {error.id: error.reason for error in reply.errors}

    def _call(self, stage: str, call: Callable[[], T]) -> T:
        """Retries forever (until stopped) while the downstream is unavailable or overloaded."""
        attempt = 0
        while True:
            try:
                return call()
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise Refused(f"{stage}: {details}") from exc
                error = f"{stage}: {code.name}: {details}"
            self._set_error(error)
            delay = backoff_delay(attempt, self._rng)
            log.warning("%s; retrying in %.1fs", error, delay)
            attempt += 1
            if self._stop.wait(delay):
                raise Stopping()


def apply_topics(enrichment: post_pb2.Enrichment, tagged: search_pb2.PostTopics) -> None:
    del enrichment.relevance[:]
    enrichment.relevance.extend(tagged.relevance)
    enrichment.topic = tagged.topic
    del enrichment.topics[:]
    enrichment.topics.extend(tagged.topics)
    enrichment.topic_set_version = tagged.topic_set_version
    enrichment.model_versions.relevance = tagged.relevance_version
