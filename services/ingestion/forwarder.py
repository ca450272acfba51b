"""Drains the spool downstream: Enrich, then IndexPosts, then EvaluatePosts, then marks the posts done.

At-least-once: a post leaves the pending state only after all three calls succeeded, or once it is
given up on (a dead letter: `failed` in the spool, with the reason, until replayed), so a crash in
between resends it; indexing is idempotent by document id. Each stage is retried on its own, so an
alerting outage does not re-run the models.

One post must not stop everyone's: a batch that a downstream refuses as invalid, or that fails
forward_max_attempts times at one stage, is tried one post at a time (isolation.py says which posts
become dead letters and which wait). Until a batch goes through again the forwarder is stalled,
which GetIngestionStats, the health service and a metric report. A batch holds at most
forward_batch_size posts and forward_batch_max_bytes bytes, so no request nears the message limit.
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
from services.ingestion.isolation import Tried, isolate
from services.ingestion.spool import Deletion, Spool, SpooledPost

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


def within_bytes(batch: Sequence[SpooledPost], limit: int) -> list[SpooledPost]:
    """The longest head of the batch whose posts take at most limit bytes (its first post at least)."""
    total = 0
    for count, spooled in enumerate(batch):
        total += len(spooled.payload)
        if total > limit and count:
            return list(batch[:count])
    return list(batch)


class Refused(Exception):
    """A downstream call judged its whole request invalid: retrying the same request cannot help."""


class GaveUp(Exception):
    """A downstream call failed as many times as it may: the last error."""


class Stopping(Exception):
    """The forwarder was asked to stop while waiting to retry."""


class Forwarder:
    """A background thread forwarding spooled posts in acceptance order."""

    def __init__(self, settings: Settings, spool: Spool, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.spool = spool
        self.batch_size = max(1, settings.forward_batch_size)
        # Enrichments, topics and framing come on top of the posts' bytes: half the limit is ample.
        self.batch_bytes = max(1, min(settings.forward_batch_max_bytes, settings.max_message_bytes // 2))
        self.max_attempts = settings.forward_max_attempts
        self.enrich_chunk = max(1, min(MAX_ENRICH_POSTS, settings.inference_max_request_posts))
        self._timeout = settings.rpc_timeout_s
        self._rng = rng or random.Random()
        self._retention_s = settings.spool_retention_days * 86400
        self._next_prune = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error_lock = threading.Lock()
        self._last_error = ""
        self._stalled_since: float | None = None
        self._stall_listeners: list[Callable[[bool], None]] = []
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

    def stalled_since(self) -> float | None:
        """When (epoch seconds) the batch at the head of the queue failed past the bound, while it has
        not gone through since; None while posts flow."""
        with self._error_lock:
            return self._stalled_since

    def on_stall(self, listener: Callable[[bool], None]) -> None:
        """Calls listener(True) when the forwarder stalls and listener(False) when posts flow again."""
        self._stall_listeners.append(listener)

    def _set_stalled(self, stalled: bool) -> None:
        with self._error_lock:
            changed = (self._stalled_since is not None) != stalled
            if changed:
                self._stalled_since = time.time() if stalled else None
        if not changed:
            return
        if stalled:
            log.warning("forwarder stalled: %s", self.last_error())
        else:
            log.info("forwarder flowing again")
        for listener in self._stall_listeners:
            listener(stalled)

    def _pause(self, delay_s: float) -> None:
        if self._stop.wait(delay_s):
            raise Stopping()

    # --- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._prune_when_due()
            batch = within_bytes(self.spool.next_batch(self.batch_size), self.batch_bytes)
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
        known: dict[int, post_pb2.Enrichment] = {}
        with telemetry.span_joining("forward_posts", traces, tracer_name=__name__) as span:
            if span.is_recording():
                telemetry.describe_batch(span, [post_pb2.Post.FromString(s.payload) for s in batch])
            telemetry.record_batch("forward", len(batch))
            try:
                forwarded, failed = self._forward_all(batch, known, self.max_attempts)
                waiting: list[SpooledPost] = []
            except (Refused, GaveUp) as exc:
                if isinstance(exc, GaveUp):
                    self._set_stalled(True)
                log.warning("%s; trying the batch's %d posts one at a time", exc, len(batch))
                forwarded, failed, waiting = self._isolate(batch, known)
        self.spool.mark_forwarded(forwarded, failed)
        telemetry.count_dead_lettered(len(failed))
        if failed:
            log.warning("gave up on %d posts: %s", len(failed), sorted(set(failed.values()))[:5])
        if waiting:
            self._set_stalled(True)
            log.warning("%d posts fail while no other post goes through; they wait", len(waiting))
            self._pause(BACKOFF_CAP_S)
            return
        self._set_error("")
        self._set_stalled(False)

    def remove_deleted(self) -> int:
        """Carries out the deletions waiting in the spool (RemovePosts per tenant); returns how many.

        One that keeps failing stays queued for the next round; one refused as invalid is dropped (the
        tombstone stays: retrying the same request cannot help)."""
        deletions = self.spool.next_deletions(MAX_REMOVALS)
        tenants: dict[str, list[Deletion]] = {}
        for deletion in deletions:
            tenants.setdefault(deletion.tenant, []).append(deletion)
        done: list[int] = []
        for tenant, queued in tenants.items():
            refs = [post_pb2.PostRef(channel=d.channel, id=d.post_id) for d in queued]
            request = search_pb2.RemovePostsRequest(tenant=tenant, posts=refs)
            try:
                reply = self._call("RemovePosts", partial(self._search.RemovePosts, request, timeout=self._timeout),
                                   self.max_attempts)
            except Refused as exc:
                log.error("tenant %s: %d deletions refused downstream: %s", tenant, len(refs), exc)
            except GaveUp:
                continue
            else:
                log.info("tenant %s: %d deleted posts removed (%d documents, %d dead letters, %d marks)", tenant,
                         len(refs), reply.removed, reply.dead_letters_removed, reply.marks_cleared)
            done += [d.seq for d in queued]
        self.spool.mark_deleted(done)
        return len(done)

    def _isolate(
        self, batch: Sequence[SpooledPost], known: dict[int, post_pb2.Enrichment]
    ) -> tuple[list[int], dict[int, str], list[SpooledPost]]:
        """Forwarded, failed and still waiting posts of the batch, tried one at a time; the probe is
        the first pending post behind the batch not yet tried."""
        forwarded: list[int] = []
        failed: dict[int, str] = {}
        behind = [max(spooled.seq for spooled in batch)]

        def try_one(spooled: SpooledPost) -> tuple[Tried, str]:
            if self._stop.is_set():
                raise Stopping()
            try:
                done, refused = self._forward_all([spooled], known, attempts=1)
            except Refused as exc:
                return Tried.REFUSED, str(exc)
            except GaveUp as exc:
                return Tried.FAILED, str(exc)
            forwarded.extend(done)
            return (Tried.DONE, "") if done else (Tried.REFUSED, refused[spooled.seq])

        def probe() -> bool:
            found = self.spool.next_batch(1, after=behind[0])
            if not found:
                return False
            behind[0] = found[0].seq
            tried, reason = try_one(found[0])
            if tried is Tried.REFUSED:
                failed[found[0].seq] = reason
            return tried is Tried.DONE

        result = isolate(batch, try_one, probe, self.max_attempts,
                         lambda round_: self._pause(backoff_delay(round_, self._rng)))
        failed.update({spooled.seq: reason for spooled, reason in result.dead.items()})
        return forwarded, failed, result.waiting

    def _forward_all(
        self, batch: Sequence[SpooledPost], known: dict[int, post_pb2.Enrichment], attempts: int
    ) -> tuple[list[int], dict[int, str]]:
        """Forwarded and refused posts of the batch; `known` keeps the enrichments already computed, so
        that trying the posts again does not run the models again."""
        posts = [post_pb2.Post.FromString(spooled.payload) for spooled in batch]
        unknown = [(spooled.seq, post) for spooled, post in zip(batch, posts, strict=True) if spooled.seq not in known]
        if unknown:
            fresh = self._enrich([post for _, post in unknown], attempts)
            known.update(zip((seq for seq, _ in unknown), fresh, strict=True))
            telemetry.count_posts("enriched", [post for _, post in unknown])
        enriched = [
            post_pb2.EnrichedPost(post=post, enrichment=known[spooled.seq])
            for spooled, post in zip(batch, posts, strict=True)
        ]
        refused = self._index(enriched, attempts)
        failed = {
            spooled.seq: f"IndexPosts: {refused[post.id]}"
            for spooled, post in zip(batch, posts, strict=True)
            if post.id in refused
        }
        to_evaluate = [e for spooled, e in zip(batch, enriched, strict=True) if spooled.seq not in failed]
        telemetry.count_posts("indexed", [e.post for e in to_evaluate])
        if to_evaluate:
            request = alerting_pb2.EvaluatePostsRequest(posts=to_evaluate)
            self._call("EvaluatePosts", lambda: self._alerting.EvaluatePosts(request, timeout=self._timeout),
                       attempts)
        return [spooled.seq for spooled in batch if spooled.seq not in failed], failed

    def _enrich(self, posts: Sequence[post_pb2.Post], attempts: int) -> list[post_pb2.Enrichment]:
        enrichments: list[post_pb2.Enrichment] = []
        for start in range(0, len(posts), self.enrich_chunk):
            request = inference_pb2.EnrichRequest(posts=posts[start : start + self.enrich_chunk])
            reply = self._call("Enrich", partial(self._inference.Enrich, request, timeout=self._timeout), attempts)
            if len(reply.enrichments) != len(request.posts):
                raise GaveUp(f"Enrich: {len(reply.enrichments)} enrichments for {len(request.posts)} posts")
            enrichments.extend(reply.enrichments)
        return enrichments

    def _index(self, enriched: Sequence[post_pb2.EnrichedPost], attempts: int) -> dict[str, str]:
        """Indexes the posts and gives each the topics search tagged it with (its tenant's, which alerting
        must see too); returns the ids the cluster refused, with reasons."""
        request = search_pb2.IndexPostsRequest(posts=enriched)
        reply = self._call("IndexPosts", lambda: self._search.IndexPosts(request, timeout=self._timeout), attempts)
        if len(reply.tagged) == len(enriched):
            for post, tagged in zip(enriched, reply.tagged, strict=True):
                if tagged.id == post.post.id:
                    apply_topics(post.enrichment, tagged)
        return {error.id: error.reason for error in reply.errors}

    def _call(self, stage: str, call: Callable[[], T], attempts: int) -> T:
        """Up to `attempts` tries with backoff between them; INVALID_ARGUMENT is not tried again."""
        for attempt in range(attempts):
            try:
                return call()
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise Refused(f"{stage}: {details}") from exc
                error = f"{stage}: {code.name}: {details}"
            self._set_error(error)
            telemetry.count_forward_failure(stage, code.name)
            if attempt + 1 < attempts:
                delay = backoff_delay(attempt, self._rng)
                log.warning("%s; retrying in %.1fs", error, delay)
                self._pause(delay)
        raise GaveUp(error)


def apply_topics(enrichment: post_pb2.Enrichment, tagged: search_pb2.PostTopics) -> None:
    del enrichment.relevance[:]
    enrichment.relevance.extend(tagged.relevance)
    enrichment.topic = tagged.topic
    del enrichment.topics[:]
    enrichment.topics.extend(tagged.topics)
    enrichment.topic_set_version = tagged.topic_set_version
    enrichment.model_versions.relevance = tagged.relevance_version
