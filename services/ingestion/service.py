"""The ingestion domain: validate, normalize, mark near-duplicates and spool a batch of posts.

Free of gRPC so that the same path serves the gRPC servicer, bulk imports and tests.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from civic.listening.v1 import ingestion_pb2, post_pb2
from services.common import telemetry
from services.common.errors import InvalidArgument
from services.common.post_validation import MAX_CHARS
from services.common.settings import Settings
from services.common.telemetry import tracer
from services.common.validation import TENANT_PATTERN, require_channel, require_tenant
from services.ingestion.near_duplicates import NearDuplicateIndex, Seen, mark_batch, signature
from services.ingestion.normalize import normalize_post, validate_post
from services.ingestion.spool import Spool, SpoolEntry

log = logging.getLogger(__name__)

ACCEPTED = ingestion_pb2.POST_OUTCOME_ACCEPTED
REJECTED = ingestion_pb2.POST_OUTCOME_REJECTED
DUPLICATE = ingestion_pb2.POST_OUTCOME_DUPLICATE


def author_key(post: post_pb2.Post) -> str:
    return post.author.id or post.author.name


class Ingestion:
    """Accepts batches of posts into a spool; `last_error` and `stalled_since` report the forwarder's
    state."""

    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        last_error: Callable[[], str] = lambda: "",
        near_duplicates: NearDuplicateIndex | None = None,
        stalled_since: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.last_error = last_error
        self.stalled_since = stalled_since
        self.near_duplicates = near_duplicates or NearDuplicateIndex()
        self.near_duplicates.add_all(
            Seen(r.tenant, r.author, r.signature)
            for r in spool.recent_signatures(self.near_duplicates.capacity)
        )
        # Near-duplicate marks depend on the order in which posts are remembered.
        self._lock = threading.Lock()

    def ingest(self, posts: Sequence[post_pb2.Post]) -> ingestion_pb2.IngestPostsResponse:
        if not posts:
            raise InvalidArgument("posts", "must contain at least one post")
        if len(posts) > self.settings.max_batch_posts:
            raise InvalidArgument(
                "posts", f"must contain at most {self.settings.max_batch_posts} posts, got {len(posts)}"
            )
        with tracer(__name__).start_as_current_span("ingest_posts") as span:
            telemetry.describe_batch(span, posts)
            results, candidates = self._validate(posts)
            self._spool(posts, candidates, results, telemetry.traceparent())
        response = ingestion_pb2.IngestPostsResponse(results=results)
        response.accepted = sum(r.outcome == ACCEPTED for r in results)
        response.rejected = sum(r.outcome == REJECTED for r in results)
        response.duplicates = sum(r.outcome == DUPLICATE for r in results)
        log.info(
            "ingested batch: %d accepted, %d rejected, %d duplicates",
            response.accepted, response.rejected, response.duplicates,
        )
        return response

    def _validate(
        self, posts: Sequence[post_pb2.Post]
    ) -> tuple[list[ingestion_pb2.PostResult], list[tuple[int, post_pb2.Post]]]:
        now = datetime.now(UTC)
        results = [ingestion_pb2.PostResult(id=post.id) for post in posts]
        candidates = []
        for i, post in enumerate(posts):
            try:
                validate_post(post, f"posts[{i}]", self.settings, now)
            except InvalidArgument as exc:
                results[i].outcome = REJECTED
                results[i].reason = str(exc)
                continue
            candidates.append((i, normalize_post(post, self.settings)))
        return results, candidates

    def _spool(
        self,
        posts: Sequence[post_pb2.Post],
        candidates: list[tuple[int, post_pb2.Post]],
        results: list[ingestion_pb2.PostResult],
        trace_context: str,
    ) -> None:
        # A rejected post counts for its tenant when that names one at all (it may be what was wrong).
        rejected = Counter(
            post.tenant if TENANT_PATTERN.fullmatch(post.tenant) else ""
            for post, result in zip(posts, results, strict=True) if result.outcome == REJECTED
        )
        remembered = [
            Seen(post.tenant, author_key(post), sig) if (sig := signature(post.text)) else None
            for _, post in candidates
        ]
        with self._lock:
            for (_, post), near in zip(candidates, mark_batch(self.near_duplicates, remembered), strict=True):
                post.near_duplicate = near
            entries = [
                SpoolEntry(
                    tenant=post.tenant,
                    channel=post.channel,
                    post_id=post.id,
                    author=author_key(post),
                    payload=post.SerializeToString(deterministic=True),
                    trace_context=trace_context,
                    signature=seen.signature if seen else None,
                )
                for (_, post), seen in zip(candidates, remembered, strict=True)
            ]
            stored = self.spool.append(entries, rejected=rejected)
            self.near_duplicates.add_all(
                seen for seen, kept in zip(remembered, stored, strict=True) if kept and seen
            )
        for (i, _), kept in zip(candidates, stored, strict=True):
            results[i].outcome = ACCEPTED if kept else DUPLICATE
        telemetry.count_rejected(rejected.total())
        telemetry.count_posts("ingested", [post for (_, post), kept in zip(candidates, stored, strict=True) if kept])

    def delete(self, tenant: str, posts: Sequence[post_pb2.PostRef]) -> ingestion_pb2.DeletePostsResponse:
        """Forgets posts their authors deleted: tombstones in the spool, removal downstream queued."""
        require_tenant(tenant)
        if not 1 <= len(posts) <= self.settings.max_batch_posts:
            raise InvalidArgument("posts", f"must name 1 to {self.settings.max_batch_posts} posts, got {len(posts)}")
        for i, ref in enumerate(posts):
            require_channel(ref.channel, f"posts[{i}].channel")
            if not 1 <= len(ref.id) <= MAX_CHARS["id"]:
                raise InvalidArgument(f"posts[{i}].id", f"must be 1 to {MAX_CHARS['id']} characters")
        deleted = self.spool.delete(tenant, [(ref.channel, ref.id) for ref in posts])
        if deleted:
            log.info("tenant %s: %d posts deleted by their authors", tenant, deleted)
        return ingestion_pb2.DeletePostsResponse(deleted=deleted, unknown=len(posts) - deleted)

    def stats(self, tenant: str = "") -> ingestion_pb2.GetIngestionStatsResponse:
        """One tenant's figures, or every tenant's with the forwarder's last error (which may name
        any tenant's post)."""
        if tenant:
            require_tenant(tenant)
        counts = self.spool.stats(tenant)
        response = ingestion_pb2.GetIngestionStatsResponse(
            accepted=counts.accepted,
            forwarded=counts.forwarded,
            failed=counts.failed,
            pending=counts.pending,
            rejected=counts.rejected,
            duplicates=counts.duplicates,
            last_error="" if tenant else self.last_error(),
            tenant=tenant,
            deleted=counts.deleted,
            deletions_pending=counts.deletions_pending,
        )
        stalled_since = self.stalled_since()
        if stalled_since is not None:
            response.stalled_since.FromNanoseconds(int(stalled_since * 1e9))
        return response
