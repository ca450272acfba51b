"""ReplayDeadLetters: list, count and re-submit the posts a tenant's cluster refused for good.

A dead letter keeps the whole document as JSON, so it is sent again exactly as it was refused,
through the same bulk writer as IndexPosts and into the tenant's alias, whose mapping the indexer
brings up to date on its first write for the tenant (the usual fix: an index made by an older
release lacked a field). A letter whose post is indexed is deleted; one refused again is stored
again with the new reason (same id); one still failing after the retries stays as it was.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, helpers

from civic.listening.v1 import search_pb2
from services.common.errors import InvalidArgument
from services.common.validation import require_tenant
from services.search.client import elasticsearch_errors
from services.search.deadletter import dead_letter_index
from services.search.indexing import Indexer
from services.search.queries import page_size

MAX_REPLAY = 5000
MAX_POST_IDS = 1000
_MISSING_IS_EMPTY: dict[str, Any] = {"ignore_unavailable": True, "allow_no_indices": True}


def _query(post_ids: list[str]) -> dict[str, Any]:
    if len(post_ids) > MAX_POST_IDS:
        raise InvalidArgument("post_ids", f"at most {MAX_POST_IDS}, got {len(post_ids)}")
    if any(not post_id for post_id in post_ids):
        raise InvalidArgument("post_ids", "must not contain an empty id")
    return {"bool": {"filter": [{"terms": {"post_id": post_ids}}]}} if post_ids else {"match_all": {}}


def replay_dead_letters(
    indexer: Indexer, request: search_pb2.ReplayDeadLettersRequest
) -> search_pb2.ReplayDeadLettersResponse:
    index = dead_letter_index(indexer.writer.deadletter_prefix, require_tenant(request.tenant))
    query = _query(list(request.post_ids))
    listed = page_size(request.page_size)
    es = indexer.es
    with elasticsearch_errors():
        total = _count(es, index, query)
    response = search_pb2.ReplayDeadLettersResponse(total=total)
    if request.replay and total:
        _replay(indexer, index, query, response)
        with elasticsearch_errors():
            es.indices.refresh(index=index, **_MISSING_IS_EMPTY)
    with elasticsearch_errors():
        response.remaining = _count(es, index, query) if request.replay else total
        hits = es.search(index=index, query=query, size=listed, sort=[{"failed_at": "desc"}, {"doc_id": "asc"}],
                         source_excludes=["document"], **_MISSING_IS_EMPTY)["hits"]["hits"]
    response.letters.extend(_letter(hit["_source"]) for hit in hits)
    return response


def _replay(indexer: Indexer, index: str, query: dict[str, Any],
            response: search_pb2.ReplayDeadLettersResponse) -> None:
    with elasticsearch_errors():
        hits = indexer.es.search(index=index, query=query, size=MAX_REPLAY, sort=[{"failed_at": "asc"}],
                                 **_MISSING_IS_EMPTY)["hits"]["hits"]
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    documents = [{**json.loads(hit["_source"]["document"]), "indexed_at": now} for hit in hits]
    results = indexer.write(documents)
    written = [hit["_id"] for hit, result in zip(hits, results, strict=True) if result.written]
    if written:
        with elasticsearch_errors():
            helpers.bulk(indexer.es, [{"_op_type": "delete", "_index": index, "_id": doc_id} for doc_id in written])
    response.replayed = len(documents)
    response.indexed = len(written)
    response.errors.extend(search_pb2.IndexError(id=document["post_id"], reason=result.reason)
                           for document, result in zip(documents, results, strict=True) if not result.written)


def _count(es: Elasticsearch, index: str, query: dict[str, Any]) -> int:
    return int(es.count(index=index, query=query, **_MISSING_IS_EMPTY)["count"])


def _letter(source: dict[str, Any]) -> search_pb2.DeadLetter:
    letter = search_pb2.DeadLetter(channel=source["channel"], post_id=source["post_id"], doc_id=source["doc_id"],
                                   reason=source["reason"])
    letter.failed_at.FromJsonString(_utc(source["failed_at"]))
    return letter


def _utc(stamp: str) -> str:
    """The stored ISO time (with +00:00) in the form protobuf's JSON parser takes (Z)."""
    return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
