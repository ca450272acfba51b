"""The dead-letter index: documents the cluster refused for good, kept with the reason.

A mapping error will not go away by retrying, but dropping the post would lose a citizen's message
without trace. It is stored in `civic-deadletter-<tenant>` (outside the `civic-posts-*` template,
so the strict post mapping does not apply) as an unindexed JSON string, with the reason and time,
where an operator can inspect it, fix the cause and replay it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, helpers

DEFAULT_PREFIX = "civic-deadletter"

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "tenant": {"type": "keyword"},
        "channel": {"type": "keyword"},
        "post_id": {"type": "keyword"},
        "doc_id": {"type": "keyword"},
        "reason": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
        "failed_at": {"type": "date"},
        "document": {"type": "keyword", "index": False, "doc_values": False},
    },
}


@dataclass(frozen=True)
class Refused:
    document: dict[str, Any]
    reason: str


def dead_letter_index(prefix: str, tenant: str) -> str:
    return f"{prefix}-{tenant}"


def ensure_index(es: Elasticsearch, name: str) -> None:
    if es.indices.exists(index=name):
        return
    try:
        es.indices.create(index=name, mappings=MAPPINGS, settings={"number_of_shards": 1,
                                                                   "auto_expand_replicas": "0-1"})
    except ApiError as exc:
        if exc.error != "resource_already_exists_exception":
            raise


def store(es: Elasticsearch, prefix: str, refused: Sequence[Refused], refresh: bool) -> int:
    """Writes the refused documents (same id as the post, so a retry replaces rather than piles up);
    returns how many were stored. A failure here raises: the caller must not report success."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    indices = {dead_letter_index(prefix, item.document["tenant"]) for item in refused}
    for name in indices:
        ensure_index(es, name)
    actions = [
        {
            "_index": dead_letter_index(prefix, item.document["tenant"]),
            "_id": item.document["doc_id"],
            "_source": {
                "tenant": item.document["tenant"], "channel": item.document["channel"],
                "post_id": item.document["post_id"], "doc_id": item.document["doc_id"],
                "reason": item.reason, "failed_at": now, "document": json.dumps(item.document),
            },
        }
        for item in refused
    ]
    stored, _ = helpers.bulk(es, actions, max_retries=5, initial_backoff=0.5, refresh=refresh or None)
    return int(stored)
