"""Bulk indexing of enriched posts into each tenant's alias.

Ids derive from (tenant, channel, id), so redelivery by the forwarder replaces documents instead of
duplicating them. 429s are retried with backoff by the bulk helper; a document the cluster rejects
(e.g. a malformed embedding) is reported back with the cluster's reason and does not fail the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch, helpers

from civic.listening.v1 import post_pb2
from services.common import telemetry
from services.common.errors import InvalidArgument
from services.common.validation import require_channel, require_tenant
from services.search.client import elasticsearch_errors
from services.search.documents import document_id, to_document
from services.search.mapping import ensure_tenant_index, install_templates

MAX_POSTS_PER_CALL = 5000


@dataclass
class IndexOutcome:
    indexed: int = 0
    # (post id, reason) of every post the cluster refused.
    errors: list[tuple[str, str]] = field(default_factory=list)


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

    def __init__(self, es: Elasticsearch, index_prefix: str, refresh: bool) -> None:
        self.es = es
        self.prefix = index_prefix
        self.refresh = refresh
        self._templates_installed = False
        self._aliases: dict[str, str] = {}

    def _alias(self, tenant: str) -> str:
        if not self._templates_installed:
            install_templates(self.es, self.prefix)
            self._templates_installed = True
        if tenant not in self._aliases:
            self._aliases[tenant] = ensure_tenant_index(self.es, self.prefix, tenant)
        return self._aliases[tenant]

    def _actions(self, posts: Sequence[post_pb2.EnrichedPost]) -> Iterator[dict[str, Any]]:
        for enriched in posts:
            doc = to_document(enriched)
            yield {"_op_type": "index", "_index": self._alias(enriched.post.tenant), "_id": doc["doc_id"],
                   "_source": doc}

    def index(self, posts: Sequence[post_pb2.EnrichedPost]) -> IndexOutcome:
        validate_posts(posts)
        # The client's own spans (db.system elasticsearch) for the bulk calls nest under this one.
        with telemetry.tracer(__name__).start_as_current_span("index_posts") as span:
            telemetry.describe_batch(span, [p.post for p in posts])
            return self._index(posts)

    def _index(self, posts: Sequence[post_pb2.EnrichedPost]) -> IndexOutcome:
        outcome = IndexOutcome()
        # Retried items come back out of order, so results are matched to posts by document id.
        post_ids = {document_id(p.post.tenant, p.post.channel, p.post.id): p.post.id for p in posts}
        with elasticsearch_errors():
            results = helpers.streaming_bulk(
                self.es, self._actions(posts), chunk_size=500, raise_on_error=False,
                max_retries=5, initial_backoff=0.5, max_backoff=10,
            )
            for ok, item in results:
                if ok:
                    outcome.indexed += 1
                else:
                    result: dict[str, Any] = next(iter(item.values()), {})
                    doc_id = str(result.get("_id", ""))
                    outcome.errors.append((post_ids.get(doc_id, doc_id), _reason(item)))
            if self.refresh:
                for alias in {self._alias(tenant) for tenant in {p.post.tenant for p in posts}}:
                    self.es.indices.refresh(index=alias)
        return outcome


def _reason(item: dict[str, Any]) -> str:
    result: dict[str, Any] = next(iter(item.values()), {})
    error = result.get("error", {})
    if isinstance(error, dict):
        cause = error.get("caused_by", {})
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        return f"{reason} ({cause.get('reason')})" if cause.get("reason") else reason
    return str(error)

