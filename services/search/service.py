"""The read side of search: every read RPC, always through the tenant's alias."""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from civic.listening.v1 import search_pb2
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.common.validation import require_channel, require_tenant
from services.search import aggregations, semantic
from services.search.client import elasticsearch_errors
from services.search.documents import document_id, from_document, read_document
from services.search.mapping import TEXT_FIELDS, alias_name
from services.search.queries import (
    bool_query,
    decode_page_token,
    encode_page_token,
    page_size,
    sort_clause,
)

# A tenant that never indexed anything has no alias yet: that reads as "no posts", not an error.
_MISSING_IS_EMPTY: dict[str, Any] = {"ignore_unavailable": True, "allow_no_indices": True}
_NOT_RETURNED = ["embedding", *(field for field in TEXT_FIELDS if field != "text")]


def search_body(request: search_pb2.SearchRequest) -> dict[str, Any]:
    """The Elasticsearch search arguments of a Search request (also what bench/ compares against)."""
    return {
        "query": bool_query(request.tenant, request.query, request.filters),
        "sort": sort_clause(request.sort),
        "size": page_size(request.page_size),
        "search_after": decode_page_token(request.page_token, request.sort),
        # The html encoder escapes the post's own markup before the tags go in: a literal "<em>"
        # in a post comes back as "&lt;em&gt;", never as a highlight.
        "highlight": {
            "pre_tags": ["<em>"], "post_tags": ["</em>"], "encoder": "html",
            "fields": {field: {"number_of_fragments": 3, "fragment_size": 150} for field in TEXT_FIELDS},
        },
        "track_total_hits": True,
        "source_excludes": _NOT_RETURNED,
    }


class Searcher:
    def __init__(self, es: Elasticsearch, index_prefix: str, embed: semantic.Embed | None = None) -> None:
        self.es = es
        self.prefix = index_prefix
        self.embed = embed or _no_embedder

    def _alias(self, tenant: str) -> str:
        return alias_name(self.prefix, require_tenant(tenant))

    def search(self, request: search_pb2.SearchRequest) -> search_pb2.SearchResponse:
        alias = self._alias(request.tenant)
        body = search_body(request)
        with elasticsearch_errors():
            try:
                reply = self.es.search(index=alias, **body, **_MISSING_IS_EMPTY)
            except ApiError as exc:
                if body["search_after"] is not None and _is_bad_search_after(exc):
                    raise InvalidArgument("page_token", "does not fit this search") from exc
                raise
        hits = reply["hits"]["hits"]
        response = search_pb2.SearchResponse(total=reply["hits"]["total"]["value"])
        for hit in hits:
            found = response.hits.add(score=hit.get("_score") or 0.0, highlights=_highlights(hit.get("highlight", {})))
            read_document(hit["_source"], found.post)
        if len(hits) == body["size"]:
            response.next_page_token = encode_page_token(request.sort, hits[-1]["sort"])
        return response

    def count(self, request: search_pb2.CountRequest) -> search_pb2.CountResponse:
        alias = self._alias(request.tenant)
        query = bool_query(request.tenant, request.query, request.filters)
        with elasticsearch_errors():
            reply = self.es.count(index=alias, query=query, **_MISSING_IS_EMPTY)
        return search_pb2.CountResponse(count=reply["count"])

    def aggregate(self, request: search_pb2.AggregateRequest) -> search_pb2.AggregateResponse:
        alias = self._alias(request.tenant)
        with elasticsearch_errors():
            return aggregations.aggregate(self.es, alias, request)

    def volume_over_time(self, request: search_pb2.VolumeOverTimeRequest) -> search_pb2.VolumeOverTimeResponse:
        alias = self._alias(request.tenant)
        with elasticsearch_errors():
            return aggregations.volume_over_time(self.es, alias, request)

    def semantic_search(self, request: search_pb2.SemanticSearchRequest) -> search_pb2.SemanticSearchResponse:
        alias = self._alias(request.tenant)
        with elasticsearch_errors():
            return semantic.semantic_search(self.es, alias, request, self.embed,
                                            {"source_excludes": _NOT_RETURNED, **_MISSING_IS_EMPTY})

    def get_post(self, request: search_pb2.GetPostRequest) -> search_pb2.GetPostResponse:
        alias = self._alias(request.tenant)
        require_channel(request.channel)
        if not request.id:
            raise InvalidArgument("id", "must not be empty")
        doc_id = document_id(request.tenant, request.channel, request.id)
        # A search, not a GET: after a rollover the alias spans several indices, which GET refuses.
        with elasticsearch_errors():
            try:
                reply = self.es.search(
                    index=alias, query={"bool": {"filter": [{"term": {"doc_id": doc_id}}]}}, size=1,
                    source_excludes=_NOT_RETURNED[1:], **_MISSING_IS_EMPTY,
                )
            except NotFoundError as exc:
                raise NotFound(f"post {request.channel}/{request.id} not found") from exc
        hits = reply["hits"]["hits"]
        if not hits:
            raise NotFound(f"post {request.channel}/{request.id} not found for tenant {request.tenant}")
        return search_pb2.GetPostResponse(post=from_document(hits[0]["_source"]))


def _no_embedder(text: str) -> tuple[list[float], str]:
    raise Unavailable("semantic search needs the inference service, which this server was not given")


def _highlights(fields: dict[str, list[str]]) -> list[str]:
    """Fragments of the plain text field first, then those found through a language field."""
    fragments: list[str] = []
    for field in TEXT_FIELDS:
        for fragment in fields.get(field, []):
            if fragment not in fragments:
                fragments.append(fragment)
    return fragments


def _is_bad_search_after(exc: ApiError) -> bool:
    return "search_after" in str(exc)

