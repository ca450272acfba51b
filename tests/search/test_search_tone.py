"""Tone (emotion, offensive language) in the search index, over gRPC against the real Elasticsearch:
every tone filter, the query-language fields, both breakdowns, the tone counts of VolumeOverTime,
and the tone fields returned in hits."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.client import connect
from services.search.indexing import Indexer
from services.search.server import build_server
from services.search.service import Searcher
from tests.search.helpers import ANGER, JOY, NEG, OPTIMISM, SADNESS, embedding, tone_corpus

pytestmark = pytest.mark.slow


def query_embedding(text: str) -> tuple[list[float], str]:
    """The same deterministic vectors the test posts carry, so a post's own text is its nearest query."""
    return embedding(text), "test-vectors"


@pytest.fixture(scope="module")
def search(elasticsearch_url: str) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    settings = Settings(es_url=elasticsearch_url, index_prefix="civic-posts")
    es = connect(settings)
    server = build_server(settings, Indexer(es, "civic-posts", refresh=True),
                          Searcher(es, "civic-posts", query_embedding), port=0).start()
    with channel(f"127.0.0.1:{server.port}", settings) as chan:
        yield search_pb2_grpc.SearchServiceStub(chan)
    server.stop()
    es.close()


@pytest.fixture
def indexed(search: search_pb2_grpc.SearchServiceStub, tenant: str) -> str:
    reply = search.IndexPosts(search_pb2.IndexPostsRequest(posts=tone_corpus(tenant)))
    assert reply.indexed == 7 and not reply.errors
    return tenant


def found(search: search_pb2_grpc.SearchServiceStub, tenant: str, query: str = "", **filters: object) -> set[str]:
    request = search_pb2.SearchRequest(tenant=tenant, query=query,
                                       filters=search_pb2.SearchFilters(**filters))  # type: ignore[arg-type]
    return {hit.post.post.id for hit in search.Search(request).hits}


def test_hits_carry_the_tone_fields(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    (hit,) = search.Search(search_pb2.SearchRequest(tenant=indexed, query="clowns")).hits
    enrichment = hit.post.enrichment
    assert enrichment.emotion == ANGER
    assert enrichment.emotion_scores.anger == pytest.approx(0.7)
    assert enrichment.emotion_scores.joy == pytest.approx(0.1)
    assert enrichment.offensive and enrichment.offensive_score == pytest.approx(0.77)
    assert enrichment.model_versions.tone == "tone@1234abcd"
    untoned = search.GetPost(search_pb2.GetPostRequest(tenant=indexed, channel="mastodon", id="t7")).post
    assert untoned.enrichment.emotion == post_pb2.EMOTION_UNSPECIFIED
    assert not untoned.enrichment.HasField("emotion_scores") and not untoned.enrichment.offensive


def test_emotion_and_offensive_filters(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    assert found(search, indexed, emotions=[ANGER]) == {"t1", "t2", "t6"}
    assert found(search, indexed, emotions=[JOY, OPTIMISM]) == {"t3", "t4"}
    assert found(search, indexed, offensive_only=True) == {"t1", "t6"}
    assert found(search, indexed, emotions=[ANGER], offensive_only=True, sentiments=[NEG]) == {"t1", "t6"}
    assert found(search, indexed, "bus", emotions=[ANGER]) == {"t2"}
    count = search.Count(search_pb2.CountRequest(
        tenant=indexed, filters=search_pb2.SearchFilters(emotions=[SADNESS, ANGER])))
    assert count.count == 4


def test_emotion_and_offensive_in_the_query_language(
    search: search_pb2_grpc.SearchServiceStub, indexed: str
) -> None:
    assert found(search, indexed, "emotion:anger") == {"t1", "t2", "t6"}
    assert found(search, indexed, "offensive:true") == {"t1", "t6"}
    # Only posts the tone heads scored are "not offensive"; t7 was never scored.
    assert found(search, indexed, "offensive:false") == {"t2", "t3", "t4", "t5"}
    assert found(search, indexed, "emotion:(joy OR sadness) OR (emotion:anger AND NOT offensive:true)") == {
        "t2", "t3", "t5"}
    with pytest.raises(grpc.RpcError) as error:
        search.Count(search_pb2.CountRequest(tenant=indexed, query="offensive:maybe"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "query" in error.value.details()


def test_semantic_search_applies_the_tone_filters(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    text = "Lovely new playground in the park, the kids are thrilled!"
    nearest = search.SemanticSearch(search_pb2.SemanticSearchRequest(tenant=indexed, text=text, page_size=3))
    assert nearest.hits[0].post.post.id == "t3"
    angry = search.SemanticSearch(search_pb2.SemanticSearchRequest(
        tenant=indexed, text=text, page_size=3, filters=search_pb2.SearchFilters(emotions=[ANGER])))
    assert {hit.post.post.id for hit in angry.hits} == {"t1", "t2", "t6"}
    offensive = search.SemanticSearch(search_pb2.SemanticSearchRequest(
        tenant=indexed, text=text, page_size=5, filters=search_pb2.SearchFilters(offensive_only=True)))
    assert {hit.post.post.id for hit in offensive.hits} == {"t1", "t6"}
    assert all(hit.post.enrichment.offensive for hit in offensive.hits)


def test_emotion_and_offensive_breakdowns(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    by_emotion = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_EMOTION))
    assert by_emotion.total == 7
    assert (by_emotion.buckets[0].key, by_emotion.buckets[0].count) == ("anger", 3)
    assert {b.key: b.count for b in by_emotion.buckets} == {"anger": 3, "joy": 1, "optimism": 1, "sadness": 1}
    assert by_emotion.buckets[0].share == pytest.approx(3 / 7)
    by_offensive = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_OFFENSIVE))
    assert {b.key: b.count for b in by_offensive.buckets} == {"offensive": 2, "not_offensive": 4}
    negative_only = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_OFFENSIVE,
        filters=search_pb2.SearchFilters(sentiments=[NEG])))
    assert {b.key: b.count for b in negative_only.buckets} == {"offensive": 2, "not_offensive": 1}


def test_volume_over_time_counts_tone_per_interval(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    reply = search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
        tenant=indexed, interval=search_pb2.TIME_INTERVAL_HOUR))
    assert reply.total == 7
    tone = [(b.count, b.anger, b.joy, b.optimism, b.sadness, b.offensive) for b in reply.buckets]
    assert tone == [(3, 2, 1, 0, 0, 1), (4, 1, 0, 1, 1, 1)]
    offensive_only = search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
        tenant=indexed, interval=search_pb2.TIME_INTERVAL_HOUR, filters=search_pb2.SearchFilters(
            offensive_only=True, emotions=[ANGER])))
    assert [(b.count, b.offensive) for b in offensive_only.buckets] == [(1, 1), (1, 1)]


def test_unspecified_emotion_filter_is_invalid(search: search_pb2_grpc.SearchServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        search.Search(search_pb2.SearchRequest(tenant="ok", filters=search_pb2.SearchFilters(
            emotions=[post_pb2.EMOTION_UNSPECIFIED])))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("filters.emotions:")
