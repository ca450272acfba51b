"""The author's layout (display_text) is stored and returned with hits, never searched, and reaches
indices that were created before the field existed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import ApiError, Elasticsearch

from civic.listening.v1 import post_pb2, search_pb2
from services.search.indexing import Indexer
from services.search.mapping import PROPERTIES, alias_name, first_index_name
from services.search.service import Searcher

pytestmark = pytest.mark.slow

LAYOUT = "Dear council,\n\n  Bins on Elm St:\n  - not collected\n  - call [PHONE]"


@pytest.fixture
def legacy(elasticsearch_url: str, tenant: str) -> Iterator[tuple[Elasticsearch, str]]:
    """A tenant index made with the mapping as it was before display_text, behind its alias."""
    prefix = f"legacy-{uuid.uuid4().hex[:8]}"
    es = Elasticsearch(elasticsearch_url)
    old = {name: spec for name, spec in PROPERTIES.items() if name != "display_text"}
    es.indices.create(index=first_index_name(prefix, tenant), mappings={"dynamic": "strict", "properties": old},
                      aliases={alias_name(prefix, tenant): {"is_write_index": True}})
    yield es, prefix
    es.indices.delete(index=first_index_name(prefix, tenant), ignore_unavailable=True)
    es.indices.delete_index_template(name=prefix)
    es.cluster.delete_component_template(name=f"{prefix}-*")
    es.close()


def test_display_text_round_trips_unsearched_into_an_older_index(
    legacy: tuple[Elasticsearch, str], tenant: str
) -> None:
    es, prefix = legacy
    post = post_pb2.Post(id="p1", tenant=tenant, channel="webhook", language="en", display_text=LAYOUT,
                         text="Dear council,\n\nBins on Elm St:\n- not collected\n- call [PHONE]")
    post.created_at.GetCurrentTime()
    outcome = Indexer(es, prefix, refresh=True).index([post_pb2.EnrichedPost(post=post)])
    assert (outcome.indexed, outcome.errors) == (1, [])

    hits = Searcher(es, prefix).search(search_pb2.SearchRequest(tenant=tenant, query="bins")).hits
    assert [(hit.post.post.text, hit.post.post.display_text) for hit in hits] == [(post.text, LAYOUT)]

    (mapping,) = es.indices.get_mapping(index=alias_name(prefix, tenant)).body.values()
    assert mapping["mappings"]["properties"]["display_text"] == {"type": "text", "index": False}
    with pytest.raises(ApiError, match="not indexed"):
        es.search(index=alias_name(prefix, tenant), query={"match": {"display_text": "bins"}})
