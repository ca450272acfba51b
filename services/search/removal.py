"""RemovePosts: what an author's deletion asks of search, carried out everywhere a post's words live.

The tenant's posts (through the alias, so every backing index after a rollover), its dead letters
(which hold whole documents) and the text analysts' marks copied (the mark itself, its verdict and
embedding stay: the topic's classifier was taught with them). Every delete is refreshed at once, so
the post is gone from the next search, count or dashboard. Idempotent: a post already gone is
simply not found again.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from civic.listening.v1 import search_pb2
from services.common.errors import InvalidArgument
from services.common.validation import require_channel, require_tenant
from services.search.client import elasticsearch_errors
from services.search.deadletter import dead_letter_index
from services.search.documents import document_id
from services.search.mapping import alias_name

MAX_POSTS = 5000
MAX_ID_CHARS = 256
_MISSING_IS_EMPTY: dict[str, Any] = {"ignore_unavailable": True, "allow_no_indices": True}
# A fixed script of the service's own; nothing of a request reaches it.
_DROP_TEXT = {"source": "if (ctx._source.containsKey('text')) { ctx._source.remove('text') } else { ctx.op = 'noop' }",
              "lang": "painless"}


class Removal:
    def __init__(self, es: Elasticsearch, index_prefix: str, deadletter_prefix: str, marks_index: str) -> None:
        self.es = es
        self.prefix = index_prefix
        self.deadletter_prefix = deadletter_prefix
        self.marks_index = marks_index

    def remove(self, request: search_pb2.RemovePostsRequest) -> search_pb2.RemovePostsResponse:
        tenant = require_tenant(request.tenant)
        if not 1 <= len(request.posts) <= MAX_POSTS:
            raise InvalidArgument("posts", f"must name 1 to {MAX_POSTS} posts, got {len(request.posts)}")
        for i, ref in enumerate(request.posts):
            require_channel(ref.channel, f"posts[{i}].channel")
            if not 1 <= len(ref.id) <= MAX_ID_CHARS:
                raise InvalidArgument(f"posts[{i}].id", f"must be 1 to {MAX_ID_CHARS} characters")
        doc_ids = sorted({document_id(tenant, ref.channel, ref.id) for ref in request.posts})
        mine = {"bool": {"filter": [{"term": {"tenant": tenant}}, {"terms": {"doc_id": doc_ids}}]}}
        with elasticsearch_errors():
            posts = self.es.delete_by_query(index=alias_name(self.prefix, tenant), query=mine, refresh=True,
                                            conflicts="proceed", **_MISSING_IS_EMPTY)
            letters = self.es.delete_by_query(index=dead_letter_index(self.deadletter_prefix, tenant), query=mine,
                                              refresh=True, conflicts="proceed", **_MISSING_IS_EMPTY)
            marks = self.es.update_by_query(index=self.marks_index, query=mine, script=_DROP_TEXT, refresh=True,
                                            conflicts="proceed", **_MISSING_IS_EMPTY)
        return search_pb2.RemovePostsResponse(removed=posts["deleted"], dead_letters_removed=letters["deleted"],
                                              marks_cleared=marks["updated"])
