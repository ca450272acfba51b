"""Bulk indexing of enriched posts into each tenant's alias.

Ids derive from (tenant, channel, id), so redelivery by the forwarder replaces documents instead of
duplicating them. Requests are split into bulk chunks by count and bytes; 429s are retried with
backoff by the bulk helper, and other transient item failures (503, shard unavailable, circuit
breaker) by a few more rounds here. A document the cluster refuses for good (e.g. a malformed
embedding) goes to the dead-letter index with the cluster's reason, is counted, and is reported
back; it never fails the rest of the batch and is never dropped silently.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch, helpers

from civic.listening.v1 import post_pb2
from services.common import telemetry
from services.common.errors import InvalidArgument
from services.common.validation import require_channel, require_tenant
from services.search import deadletter
from services.search.client import elasticsearch_errors
from services.search.deadletter import Refused
from services.search.documents import to_document
from services.search.mapping import ensure_tenant_index, install_templates

MAX_POSTS_PER_CALL = 5000


@dataclass
class IndexOutcome:
    indexed: int = 0
    # (post id, reason) of every post not written: refused for good, or still failing after retries.
    errors: list[tuple[str, str]] = field(default_factory=list)
    # How many of the errors were stored in the dead-letter index.
    dead_lettered: int = 0


def validate_posts(posts: Sequence[post_pb2.EnrichedPost]) -> None:
    if not posts:
        raise InvalidArgument("posts", "must contain at least one post")
    if len(posts) > MAX_POSTS_PER_CALL:
        raise InvalidArgument("posts", f"at most {MAX_POSTS_PER_CALL} posts per call, got {len(posts)}")
    for position, enriched in enumerate(posts):
        require_tenant(enriched.post.tenant, f"posts[{position}].post.tenant")
        require_channel(enriched.post.channel, f"posts[{position}].post.channel")
        if not enriched.post.id:
            raise InvalidArgument(f"posts[{position}].post.id", "must not be empty")


class Indexer:
    """Writes posts; remembers which tenants already have their index so that check is made once."""

    def __init__(
        self, es: Elasticsearch, index_prefix: str, refresh: bool, *,
        deadletter_prefix: str = deadletter.DEFAULT_PREFIX, chunk_docs: int = 500,
        chunk_bytes: int = 10 * 1024 * 1024, transient_retries: int = 3, initial_backoff_s: float = 0.5,
    ) -> None:
        self.es = es
        self.prefix = index_prefix
        self.refresh = refresh
        self.deadletter_prefix = deadletter_prefix
        self.chunk_docs = chunk_docs
        self.chunk_bytes = chunk_bytes
        self.transient_retries = transient_retries
        self.initial_backoff_s = initial_backoff_s
        self._templates_installed = False
        self._aliases: dict[str, str] = {}

    def _alias(self, tenant: str) -> str:
        if not self._templates_installed:
            install_templates(self.es, self.prefix)
            self._templates_installed = True
        if tenant not in self._aliases:
            self._aliases[tenant] = ensure_tenant_index(self.es, self.prefix, tenant)
        return self._aliases[tenant]

    def index(self, posts: Sequence[post_pb2.EnrichedPost]) -> IndexOutcome:
        validate_posts(posts)
        # The client's own spans (db.system elasticsearch) for the bulk calls nest under this one.
        with telemetry.tracer(__name__).start_as_current_span("index_posts") as span:
            telemetry.describe_batch(span, [p.post for p in posts])
            return self._index(posts)

    def _index(self, posts: Sequence[post_pb2.EnrichedPost]) -> IndexOutcome:
        outcome = IndexOutcome()
        pending = [to_document(p) for p in posts]
        documents = {doc["doc_id"]: doc for doc in pending}
        refused: list[Refused] = []
        with elasticsearch_errors():
            for attempt in range(self.transient_retries + 1):
                transient: list[dict[str, Any]] = []
                for ok, item in self._bulk(pending):
                    result: dict[str, Any] = next(iter(item.values()), {})
                    doc_id = str(result.get("_id", ""))
                    if ok:
                        outcome.indexed += 1
                    elif _is_transient(result) and attempt < self.transient_retries:
                        transient.append(documents[doc_id])
                    elif _is_transient(result):
                        outcome.errors.append((documents[doc_id]["post_id"], _reason(item)))
                    else:
                        refused.append(Refused(documents[doc_id], _reason(item)))
                if not transient:
                    break
                pending = transient
                time.sleep(min(self.initial_backoff_s * 2**attempt, 10.0))
            if refused:
                outcome.dead_lettered = deadletter.store(self.es, self.deadletter_prefix, refused, self.refresh)
                outcome.errors += [(item.document["post_id"], item.reason) for item in refused]
            if self.refresh:
                for alias in {self._alias(tenant) for tenant in {p.post.tenant for p in posts}}:
                    self.es.indices.refresh(index=alias)
        return outcome

    def _bulk(self, documents: list[dict[str, Any]]) -> Iterable[tuple[bool, dict[str, Any]]]:
        """Chunks by count and bytes; the helper itself retries 429s with exponential backoff."""
        actions = ({"_op_type": "index", "_index": self._alias(doc["tenant"]), "_id": doc["doc_id"],
                    "_source": doc} for doc in documents)
        return helpers.streaming_bulk(
            self.es, actions, chunk_size=self.chunk_docs, max_chunk_bytes=self.chunk_bytes,
            raise_on_error=False, max_retries=5, initial_backoff=self.initial_backoff_s, max_backoff=10,
        )


# Item failures that may pass on a later try; anything else (a mapping error) never will.
_TRANSIENT_STATUS = {429, 502, 503, 504}
_TRANSIENT_TYPES = {"es_rejected_execution_exception", "unavailable_shards_exception",
                    "circuit_breaking_exception", "process_cluster_event_timeout_exception"}


def _is_transient(result: dict[str, Any]) -> bool:
    error = result.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    return int(result.get("status", 0)) in _TRANSIENT_STATUS or kind in _TRANSIENT_TYPES


def _reason(item: dict[str, Any]) -> str:
    result: dict[str, Any] = next(iter(item.values()), {})
    error = result.get("error", {})
    if isinstance(error, dict):
        cause = error.get("caused_by", {})
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        return f"{reason} ({cause.get('reason')})" if cause.get("reason") else reason
    return str(error)

