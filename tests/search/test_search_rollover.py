"""Rollover of a tenant's posts to the next backing index, against the real Elasticsearch: the next
index comes from the same template, the alias reads across both, writes go to the new one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from elasticsearch import Elasticsearch

from civic.listening.v1 import search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.client import connect
from services.search.indexing import Indexer
from services.search.mapping import alias_name, first_index_name
from services.search.rollover import Conditions, RolloverLoop, ilm_available, rollover, tenants
from services.search.server import build_server
from services.search.service import Searcher
from tests.search.helpers import corpus, documented_fields, enriched, flatten

pytestmark = pytest.mark.slow

# A prefix of its own: the periodic check rolls over every tenant under its prefix.
PREFIX = f"rollover-test-{uuid.uuid4().hex[:8]}"


@dataclass
class Served:
    stub: search_pb2_grpc.SearchServiceStub
    es: Elasticsearch


@pytest.fixture(scope="module")
def served(elasticsearch_url: str) -> Iterator[Served]:
    settings = Settings(es_url=elasticsearch_url, index_prefix=PREFIX)
    es = connect(settings)
    server = build_server(settings, Indexer(es, PREFIX, refresh=True, lifecycle=Conditions()),
                          Searcher(es, PREFIX), port=0).start()
    with channel(f"127.0.0.1:{server.port}", settings) as chan:
        yield Served(search_pb2_grpc.SearchServiceStub(chan), es)
    server.stop()
    es.close()


def backing_indices(es: Elasticsearch, tenant: str) -> dict[str, bool]:
    """Index name -> whether it is the alias's write index."""
    alias = alias_name(PREFIX, tenant)
    return {name: bool(spec["aliases"][alias].get("is_write_index"))
            for name, spec in es.indices.get_alias(name=alias).body.items()}


def test_rollover_adds_the_next_index_behind_the_same_alias(served: Served, tenant: str) -> None:
    assert served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=corpus(tenant))).indexed == 5
    assert not rollover(served.es, PREFIX, tenant, Conditions(max_docs=100)).rolled_over
    rolled = rollover(served.es, PREFIX, tenant, Conditions(max_docs=5))
    first = first_index_name(PREFIX, tenant)
    assert rolled.rolled_over and rolled.old_index == first
    assert rolled.new_index == first.replace("-000001", "-000002")
    assert backing_indices(served.es, tenant) == {first: False, rolled.new_index: True}

    later = [enriched(tenant, "p8", "The route 12 bus is late again after the timetable change.", minute=9)]
    assert served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=later)).indexed == 1
    hits = served.es.search(index=alias_name(PREFIX, tenant), query={"match_all": {}}, size=10)["hits"]["hits"]
    assert {hit["_source"]["post_id"]: hit["_index"] for hit in hits} == {
        **{f"p{n}": first for n in range(1, 6)}, "p8": rolled.new_index}

    reply = served.stub.Search(search_pb2.SearchRequest(tenant=tenant, query="route AND bus"))
    assert {hit.post.post.id for hit in reply.hits} == {"p1", "p5", "p8"}, "reads span both indices"
    assert served.stub.Count(search_pb2.CountRequest(tenant=tenant)).count == 6
    old = served.stub.GetPost(search_pb2.GetPostRequest(tenant=tenant, channel="mastodon", id="p1"))
    assert old.post.post.id == "p1"

    (new_mapping,) = served.es.indices.get_mapping(index=rolled.new_index).body.values()
    assert flatten(new_mapping["mappings"]["properties"]) == documented_fields(), "the template made it"


def test_the_periodic_check_rolls_over_only_tenants_past_a_condition(served: Served, tenant: str) -> None:
    small, large = f"{tenant}-small", f"{tenant}-large"
    served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=corpus(small)[:1] + corpus(large)))
    assert {small, large} <= set(tenants(served.es, PREFIX))
    loop = RolloverLoop(served.es, PREFIX, Conditions(max_docs=3), interval_s=0.2).start()
    try:
        deadline = time.monotonic() + 20
        while len(backing_indices(served.es, large)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        loop.stop()
    assert len(backing_indices(served.es, large)) == 2
    assert list(backing_indices(served.es, small)) == [first_index_name(PREFIX, small)]


def test_the_local_cluster_has_no_ilm_so_the_service_rolls_over_itself(served: Served) -> None:
    # The local distribution ships no ILM module: its status endpoint does not exist.
    assert not ilm_available(served.es)
