"""Indexing of enriched posts into each tenant's write alias, through the shared bulk writer.

Ids derive from (tenant, channel, id), so redelivery by the forwarder replaces documents instead of
duplicating them. The call's documents join the bulk writer's queue with those of concurrent calls
(bulk_writer.py: batching by count, bytes and time, retries, dead letters); the call returns when
each of its own posts is written, dead-lettered with the cluster's reason, or failed for now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from civic.listening.v1 import post_pb2, search_pb2
from services.common import telemetry
from services.common.errors import InvalidArgument
from services.common.post_validation import MAX_TEXT_CHARS, check_post
from services.search import deadletter
from services.search.bulk_writer import BulkPolicy, BulkWriter, ItemResult
from services.search.client import elasticsearch_errors
from services.search.documents import to_document
from services.search.mapping import ensure_tenant_index, install_templates
from services.search.rollover import Conditions, attach_lifecycle, ilm_available
from services.search.topics.tagger import Tagger

MAX_POSTS_PER_CALL = 5000


@dataclass
class IndexOutcome:
    indexed: int = 0
    # (post id, reason) of every post not written: refused for good, or still failing after retries.
    errors: list[tuple[str, str]] = field(default_factory=list)
    # How many of the errors were stored in the dead-letter index.
    dead_lettered: int = 0
    # The topics each post was tagged with, in request order (empty without a tagger).
    tagged: list[search_pb2.PostTopics] = field(default_factory=list)


def validate_posts(posts: Sequence[post_pb2.EnrichedPost], max_text_chars: int = MAX_TEXT_CHARS) -> None:
    """The same checks as ingestion's (services/common/post_validation.py): a post it accepted is
    never refused here."""
    if not posts:
        raise InvalidArgument("posts", "must contain at least one post")
    if len(posts) > MAX_POSTS_PER_CALL:
        raise InvalidArgument("posts", f"at most {MAX_POSTS_PER_CALL} posts per call, got {len(posts)}")
    for position, enriched in enumerate(posts):
        check_post(enriched.post, f"posts[{position}].post", max_text_chars)


class Indexer:
    """Writes posts; remembers which tenants already have their index so that check is made once."""

    def __init__(
        self, es: Elasticsearch, index_prefix: str, refresh: bool, *,
        deadletter_prefix: str = deadletter.DEFAULT_PREFIX, policy: BulkPolicy | None = None,
        lifecycle: Conditions | None = None, tagger: Tagger | None = None, max_text_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        """tagger: tags each post with its tenant's topics before it is written; without one, posts keep
        the relevance they came with."""
        self.es = es
        self.tagger = tagger
        self.max_text_chars = max_text_chars
        self.prefix = index_prefix
        self.writer = BulkWriter(es, policy or BulkPolicy(), refresh, deadletter_prefix)
        # With conditions given and a cluster that has ILM, each tenant's indices get the ILM policy.
        self.lifecycle = lifecycle
        self._ilm: bool | None = None
        self._templates_installed = False
        self._aliases: dict[str, str] = {}

    def _alias(self, tenant: str) -> str:
        if not self._templates_installed:
            install_templates(self.es, self.prefix)
            self._ilm = self.lifecycle is not None and ilm_available(self.es)
            self._templates_installed = True
        if tenant not in self._aliases:
            if self._ilm and self.lifecycle is not None:
                attach_lifecycle(self.es, self.prefix, tenant, self.lifecycle)
            self._aliases[tenant] = ensure_tenant_index(self.es, self.prefix, tenant)
        return self._aliases[tenant]

    @property
    def ilm(self) -> bool:
        """True once the first write found ILM on the cluster (it then does the rolling over)."""
        return bool(self._ilm)

    def index(self, posts: Sequence[post_pb2.EnrichedPost]) -> IndexOutcome:
        validate_posts(posts, self.max_text_chars)
        # The bulk request that carries these posts runs in a span continuing (or linked to) this one.
        with telemetry.tracer(__name__).start_as_current_span("index_posts") as span:
            telemetry.describe_batch(span, [p.post for p in posts])
            tagged: list[search_pb2.PostTopics] = []
            if self.tagger is not None:
                with elasticsearch_errors():
                    tagged = self.tagger.tag_posts(posts)
            documents = [to_document(p) for p in posts]
            results = self.write(documents)
        outcome = IndexOutcome(tagged=tagged)
        for document, result in zip(documents, results, strict=True):
            if result.written:
                outcome.indexed += 1
                continue
            outcome.errors.append((document["post_id"], result.reason))
            outcome.dead_lettered += result.dead_lettered
        return outcome

    def write(self, documents: Sequence[dict[str, Any]]) -> list[ItemResult]:
        """Writes ready documents into their tenants' aliases; each one's result, in order."""
        with elasticsearch_errors():
            queued = [(self._alias(document["tenant"]), document) for document in documents]
        return self.writer.submit(queued, telemetry.traceparent()).wait()

    def close(self) -> None:
        """Writes what is still queued; later calls are refused as UNAVAILABLE."""
        self.writer.close()
