"""SemanticSearch: kNN on the post embeddings, filtered inside the kNN search, optionally hybrid.

The filters go into the knn clause itself (not a post-filter), so the k hits are the k nearest
posts that pass them, never fewer because near neighbours were filtered out afterwards.

Hybrid search fuses the kNN ranking and the boolean query's ranking by reciprocal rank fusion
(score = sum of 1 / (60 + rank) over both lists), computed here: the free local server has no RRF
retriever, and summing a BM25 score with a cosine similarity would let whichever scale is larger
decide. Fusion of ranks needs no score calibration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from elasticsearch import Elasticsearch

from civic.listening.v1 import search_pb2
from services.common.errors import InvalidArgument
from services.search.documents import read_document
from services.search.queries import bool_query, filter_clauses, page_size, text_query

MAX_TEXT_CHARS = 1000
RRF_RANK_CONSTANT = 60
MIN_CANDIDATES = 100

# Text -> (unit vector, encoder name). Supplied by the server (a stub of the InferenceService).
Embed = Callable[[str], tuple[list[float], str]]


def semantic_search(
    es: Elasticsearch, alias: str, request: search_pb2.SemanticSearchRequest, embed: Embed,
    search_options: dict[str, Any],
) -> search_pb2.SemanticSearchResponse:
    if not request.text.strip():
        raise InvalidArgument("text", "must not be empty")
    if len(request.text) > MAX_TEXT_CHARS:
        raise InvalidArgument("text", f"at most {MAX_TEXT_CHARS} characters, got {len(request.text)}")
    k = page_size(request.page_size)
    filters = filter_clauses(request.tenant, request.filters)
    hybrid = text_query(request.query) is not None  # validates the query before embedding anything
    vector, encoder = embed(request.text)
    knn = {"field": "embedding", "query_vector": vector, "k": k, "num_candidates": max(MIN_CANDIDATES, 4 * k),
           "filter": {"bool": {"filter": filters}}}
    nearest = es.search(index=alias, knn=knn, size=k, **search_options)["hits"]["hits"]
    response = search_pb2.SemanticSearchResponse(encoder=encoder)
    if not hybrid:
        for hit in nearest:
            read_document(hit["_source"], response.hits.add(score=hit["_score"]).post)
        return response
    matched = es.search(index=alias, query=bool_query(request.tenant, request.query, request.filters), size=k,
                        highlight={"encoder": "html", "fields": {"text": {}, "text_*": {}}},
                        **search_options)["hits"]["hits"]
    for hit, score in fuse([nearest, matched])[:k]:
        fragments = list(dict.fromkeys(f for field in hit.get("highlight", {}).values() for f in field))
        read_document(hit["_source"], response.hits.add(score=score, highlights=fragments).post)
    return response


def fuse(rankings: list[list[dict[str, Any]]]) -> list[tuple[dict[str, Any], float]]:
    """Reciprocal rank fusion of hit lists; ties keep a stable order by document id."""
    scores: dict[str, float] = {}
    hits: dict[str, dict[str, Any]] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            doc_id = hit["_id"]
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (RRF_RANK_CONSTANT + rank)
            if doc_id not in hits or hit.get("highlight"):
                hits[doc_id] = hit  # the text search's copy carries the highlights
    order = sorted(scores, key=lambda doc_id: (-scores[doc_id], doc_id))
    return [(hits[doc_id], scores[doc_id]) for doc_id in order]
