"""The newer SearchService RPCs over gRPC against the real Elasticsearch (and, for kNN, the real
inference service): breakdowns, volume over time, semantic and hybrid search, the dead-letter path."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from elasticsearch import Elasticsearch
from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import inference_pb2, inference_pb2_grpc, search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.client import connect
from services.search.embedder import InferenceEmbedder
from services.search.indexing import Indexer
from services.search.server import build_server
from services.search.service import Searcher
from tests.search.helpers import BASE_SECONDS, NEG, NEU, POS, corpus, enriched

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def search(elasticsearch_url: str) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    """A search server without inference: everything but SemanticSearch."""
    settings = Settings(es_url=elasticsearch_url, index_prefix="civic-posts")
    es = connect(settings)
    server = build_server(settings, Indexer(es, "civic-posts", refresh=True), Searcher(es, "civic-posts"),
                          port=0).start()
    with channel(f"127.0.0.1:{server.port}", settings) as chan:
        yield search_pb2_grpc.SearchServiceStub(chan)
    server.stop()
    es.close()


def at(minutes: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromSeconds(BASE_SECONDS + minutes * 60)
    return stamp


@pytest.fixture
def indexed(search: search_pb2_grpc.SearchServiceStub, tenant: str) -> str:
    extra = [
        enriched(tenant, "p6", "Another bus late on route 12, the third time this week.", sentiment=NEG,
                 topic="transit", minute=70, followers=1200),
        enriched(tenant, "p7", "Bus late again and nobody answers the phone at the depot.", sentiment=NEG,
                 topic="transit", minute=130, followers=15),
    ]
    assert search.IndexPosts(search_pb2.IndexPostsRequest(posts=corpus(tenant) + extra)).indexed == 7
    return tenant


def test_share_of_voice_and_unique_authors(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    reply = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_SOURCE))
    assert reply.total == 7 and reply.unique_authors == 7
    shares = {bucket.key: (bucket.count, round(bucket.share, 3)) for bucket in reply.buckets}
    assert shares == {"#cityhall": (5, 0.714), "r/city": (1, 0.143), "https://news.example.org/feed": (1, 0.143)}


def test_top_authors_by_reach(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    reply = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_AUTHOR, size=3, query="bus"))
    assert [(b.key, b.label, b.reach, b.count) for b in reply.buckets] == [
        ("acct-p1", "Resident p1", 1200, 1), ("acct-p6", "Resident p6", 1200, 1), ("acct-p5", "Resident p5", 80, 1)]
    assert reply.total == 4 and reply.unique_authors == 4


def test_top_terms_leave_stop_words_out(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    reply = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_TERM, size=4))
    counts = {bucket.key: bucket.count for bucket in reply.buckets}
    assert counts == {"bus": 4, "late": 3, "route": 3, "again": 2}
    french = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_TERM,
        filters=search_pb2.SearchFilters(languages=["fr"])))
    words = [bucket.key for bucket in french.buckets]
    assert "manifestations" in words and "mairie" in words and not {"les", "la"} & set(words)


def test_significant_terms_stand_out_from_the_background(
    search: search_pb2_grpc.SearchServiceStub, indexed: str
) -> None:
    # The newest hour holds the two "bus late" complaints; against all posts, "late" stands out.
    reply = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_SIGNIFICANT_TERM,
        filters=search_pb2.SearchFilters(created_from=at(60))))
    assert reply.total == 2
    top = reply.buckets[0]
    assert (top.key, top.count, top.background_count) == ("late", 2, 3) and top.score > 0
    assert [b.score for b in reply.buckets] == sorted((b.score for b in reply.buckets), reverse=True)


def test_volume_over_time_splits_sentiment(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    hourly = search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
        tenant=indexed, interval=search_pb2.TIME_INTERVAL_HOUR))
    assert hourly.total == 7
    hour = BASE_SECONDS - BASE_SECONDS % 3600  # the posts are at minutes 1-5, 70 and 130 after BASE
    assert [(b.start.seconds - hour, b.count, b.negative, b.neutral, b.positive) for b in hourly.buckets] == [
        (0, 5, 2, 1, 2), (3600, 1, 1, 0, 0), (7200, 1, 1, 0, 0)]
    assert sum(b.count for b in hourly.buckets) == 7
    assert [b.start.seconds for b in hourly.buckets] == sorted(b.start.seconds for b in hourly.buckets)
    negative_only = search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
        tenant=indexed, interval=search_pb2.TIME_INTERVAL_DAY, query="late",
        filters=search_pb2.SearchFilters(sentiments=[NEG])))
    assert [(b.count, b.negative, b.neutral, b.positive) for b in negative_only.buckets] == [(3, 3, 0, 0)]


def test_volume_fills_the_requested_range_with_empty_intervals(
    search: search_pb2_grpc.SearchServiceStub, indexed: str
) -> None:
    start = Timestamp()
    start.FromSeconds(BASE_SECONDS - BASE_SECONDS % 3600 - 2 * 3600)
    end = Timestamp()
    end.FromSeconds(start.seconds + 6 * 3600)
    reply = search.VolumeOverTime(search_pb2.VolumeOverTimeRequest(
        tenant=indexed, interval=search_pb2.TIME_INTERVAL_HOUR,
        filters=search_pb2.SearchFilters(created_from=start, created_to=end)))
    assert [b.start.seconds - start.seconds for b in reply.buckets] == [h * 3600 for h in range(6)]
    assert [b.count for b in reply.buckets][:2] == [0, 0] and sum(b.count for b in reply.buckets) == 7


def test_volume_and_aggregate_validation(search: search_pb2_grpc.SearchServiceStub) -> None:
    start, end = Timestamp(), Timestamp()
    start.FromSeconds(BASE_SECONDS)
    end.FromSeconds(BASE_SECONDS + 2000 * 3600)
    for call, request, field in [
        (search.VolumeOverTime, search_pb2.VolumeOverTimeRequest(
            tenant="ok", interval=search_pb2.TIME_INTERVAL_HOUR,
            filters=search_pb2.SearchFilters(created_from=start, created_to=end)), "filters.created_from"),
        (search.VolumeOverTime, search_pb2.VolumeOverTimeRequest(tenant="ok", interval=99), "interval"),  # type: ignore[arg-type]
        (search.VolumeOverTime, search_pb2.VolumeOverTimeRequest(tenant="ok", query="(bus"), "query"),
        (search.Aggregate, search_pb2.AggregateRequest(tenant="ok", dimension=99), "dimension"),  # type: ignore[arg-type]
        (search.SemanticSearch, search_pb2.SemanticSearchRequest(tenant="ok", text=""), "text"),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            call(request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith(f"{field}:"), error.value.details()


def test_invalid_query_names_the_position_over_grpc(search: search_pb2_grpc.SearchServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        search.Search(search_pb2.SearchRequest(tenant="ok", query="bus AND (late OR delay"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "query: unbalanced parenthesis at position 9: '(' is never closed"


def test_semantic_search_without_inference_is_unavailable(search: search_pb2_grpc.SearchServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        search.SemanticSearch(search_pb2.SemanticSearchRequest(tenant="ok", text="bus"))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_refused_documents_go_to_the_dead_letter_index(
    search: search_pb2_grpc.SearchServiceStub, tenant: str, elasticsearch_url: str
) -> None:
    good = enriched(tenant, "good", "Snow ploughs have not cleared Maple Avenue yet.", sentiment=NEG)
    bad = enriched(tenant, "bad", "Garbage collection skipped our street twice.", sentiment=NEG)
    del bad.enrichment.embedding[10:]
    reply = search.IndexPosts(search_pb2.IndexPostsRequest(posts=[good, bad]))
    assert (reply.indexed, reply.dead_lettered, [e.id for e in reply.errors]) == (1, 1, ["bad"])
    with Elasticsearch(elasticsearch_url) as es:
        es.indices.refresh(index=f"civic-deadletter-{tenant}")
        (letter,) = es.search(index=f"civic-deadletter-{tenant}")["hits"]["hits"]
        assert not es.indices.exists_alias(name=f"civic-deadletter-{tenant}")
    stored = letter["_source"]
    assert (stored["tenant"], stored["channel"], stored["post_id"]) == (tenant, "mastodon", "bad")
    assert "dimensions" in stored["reason"] and stored["failed_at"]
    assert '"Garbage collection skipped our street twice."' in stored["document"]
    # Sending it again replaces the letter instead of piling up a second one.
    assert search.IndexPosts(search_pb2.IndexPostsRequest(posts=[bad])).dead_lettered == 1
    with Elasticsearch(elasticsearch_url) as es:
        es.indices.refresh(index=f"civic-deadletter-{tenant}")
        assert es.count(index=f"civic-deadletter-{tenant}")["count"] == 1


SEMANTIC_TEXTS = {
    "bus": ("The number 12 bus was forty minutes late this morning.", "en", NEG),
    "train": ("Le train de banlieue est encore en retard ce matin.", "fr", NEG),
    "park": ("The new playground in the park is wonderful for the kids.", "en", POS),
    "tax": ("How do I pay my property tax online?", "en", NEU),
}


@pytest.fixture(scope="module")
def semantic(elasticsearch_url: str, inference_target: str) -> Iterator[tuple[search_pb2_grpc.SearchServiceStub, str]]:
    """A search server wired to the real inference service, and a tenant whose posts carry real embeddings."""
    settings = Settings(es_url=elasticsearch_url, inference_target=inference_target)
    with channel(inference_target, settings) as chan:
        embedded = inference_pb2_grpc.InferenceServiceStub(chan).Embed(
            inference_pb2.EmbedRequest(texts=[text for text, _, _ in SEMANTIC_TEXTS.values()]), timeout=60)
    tenant = "t-semantic-search"
    posts = []
    for (post_id, (text, language, sentiment)), vector in zip(SEMANTIC_TEXTS.items(), embedded.embeddings, strict=True):
        post = enriched(tenant, post_id, text, language=language, sentiment=sentiment)
        post.enrichment.embedding[:] = vector.values
        posts.append(post)
    es = connect(settings)
    server = build_server(settings, Indexer(es, "civic-posts", refresh=True),
                          Searcher(es, "civic-posts", InferenceEmbedder(settings)), port=0).start()
    with channel(f"127.0.0.1:{server.port}", settings) as chan:
        stub = search_pb2_grpc.SearchServiceStub(chan)
        assert stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts)).indexed == len(posts)
        yield stub, tenant
    server.stop()
    es.close()


def test_knn_finds_the_closest_meaning_across_languages(
    semantic: tuple[search_pb2_grpc.SearchServiceStub, str]
) -> None:
    stub, tenant = semantic
    reply = stub.SemanticSearch(search_pb2.SemanticSearchRequest(tenant=tenant, text="public transport delays",
                                                                 page_size=2))
    assert {hit.post.post.id for hit in reply.hits} == {"bus", "train"}
    assert reply.encoder and all(0 < hit.score <= 1 for hit in reply.hits)
    assert not reply.hits[0].post.enrichment.embedding


def test_knn_filters_apply_inside_the_knn_search(semantic: tuple[search_pb2_grpc.SearchServiceStub, str]) -> None:
    stub, tenant = semantic
    reply = stub.SemanticSearch(search_pb2.SemanticSearchRequest(
        tenant=tenant, text="public transport delays", page_size=2,
        filters=search_pb2.SearchFilters(languages=["en"], sentiments=[NEG, POS])))
    # The French train post is filtered out inside kNN, so the 2 hits are the 2 nearest that pass.
    assert [hit.post.post.id for hit in reply.hits] == ["bus", "park"]


def test_hybrid_fuses_text_and_meaning(semantic: tuple[search_pb2_grpc.SearchServiceStub, str]) -> None:
    stub, tenant = semantic
    reply = stub.SemanticSearch(search_pb2.SemanticSearchRequest(
        tenant=tenant, text="public transport delays", query="playground", page_size=3))
    ids = [hit.post.post.id for hit in reply.hits]
    nearest = stub.SemanticSearch(search_pb2.SemanticSearchRequest(
        tenant=tenant, text="public transport delays", page_size=3)).hits[0].post.post.id
    # Only "park" matches the text (rank 1 there); the nearest post is rank 1 by meaning: they lead.
    assert set(ids[:2]) == {"park", nearest} and len(ids) == 3
    park = next(hit for hit in reply.hits if hit.post.post.id == "park")
    assert any("<em>playground</em>" in fragment for fragment in park.highlights)
    scores = [hit.score for hit in reply.hits]
    assert scores == sorted(scores, reverse=True) and scores[0] <= 2 / 61
