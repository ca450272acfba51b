"""RemovePosts: what an author's deletion asks of search, carried out everywhere a post's words live.

The tenant's posts (through the alias, so every backing index after a rollover), its dead letters
(which hold whole documents) and the text analysts' marks copied (the mark itself, its verdict and
embedding stay: the topic's classifier was taught with them). Found by search and removed by bulk
requests (delete-by-query is a module not every cluster has), each refreshed at once, so the post
is gone from the next search, count or dashboard. Idempotent: a post already gone is not found.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch, helpers

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
            removed = self._delete(alias_name(self.prefix, tenant), mine, len(doc_ids))
            letters = self._delete(dead_letter_index(self.deadletter_prefix, tenant), mine, len(doc_ids))
            marks = self._drop_text(mine)
        return search_pb2.RemovePostsResponse(removed=removed, dead_letters_removed=letters, marks_cleared=marks)

    def _delete(self, index: str, query: dict[str, Any], expected: int) -> int:
        """Deletes what the query finds, in every index behind the name (an alias spans its rollovers)."""
        # A post sent again after a rollover can sit in two backing indices: room for both.
        hits = self.es.search(index=index, query=query, size=min(10_000, 2 * expected), source=False,
                              **_MISSING_IS_EMPTY)["hits"]["hits"]
        actions = [{"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]} for hit in hits]
        if not actions:
            return 0
        deleted, _ = helpers.bulk(self.es, actions, refresh=True, raise_on_error=False)
        return int(deleted)

    def _drop_text(self, query: dict[str, Any]) -> int:
        """Rewrites the marks of these posts without their text (the only copy of it in marks)."""
        hits = self.es.search(index=self.marks_index, query=query, size=10_000, **_MISSING_IS_EMPTY)["hits"]["hits"]
        actions = [{"_op_type": "index", "_index": hit["_index"], "_id": hit["_id"],
                    "_source": {k: v for k, v in hit["_source"].items() if k != "text"}}
                   for hit in hits if "text" in hit["_source"]]
        if not actions:
            return 0
        cleared, _ = helpers.bulk(self.es, actions, refresh=True, raise_on_error=False)
        return int(cleared)
