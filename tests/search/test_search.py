"""SearchService over gRPC against a real Elasticsearch: indexing, querying, filters, paging, tenancy."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.client import connect
from services.search.indexing import Indexer
from services.search.server import build_server
from services.search.service import Searcher
from tests.search.helpers import BASE_SECONDS, NEG, POS, corpus, enriched

pytestmark = pytest.mark.slow

UNSET = post_pb2.SENTIMENT_LABEL_UNSPECIFIED


@pytest.fixture(scope="module")
def search(elasticsearch_url: str) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    settings = Settings(es_url=elasticsearch_url, es_refresh_on_index=True, index_prefix="civic-posts")
    es = connect(settings)
    server = build_server(settings, Indexer(es, settings.index_prefix, refresh=True), Searcher(es, "civic-posts"),
                          port=0).start()
    with channel(f"127.0.0.1:{server.port}", settings) as chan:
        yield search_pb2_grpc.SearchServiceStub(chan)
    server.stop()
    es.close()


@pytest.fixture
def indexed(search: search_pb2_grpc.SearchServiceStub, tenant: str) -> str:
    reply = search.IndexPosts(search_pb2.IndexPostsRequest(posts=corpus(tenant)))
    assert reply.indexed == 5 and not reply.errors
    return tenant


def ids(reply: search_pb2.SearchResponse) -> list[str]:
    return [hit.post.post.id for hit in reply.hits]


def test_indexed_post_is_found_with_its_sentiment(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    reply = search.Search(search_pb2.SearchRequest(tenant=indexed, query="streetlights"))
    assert reply.total == 1
    hit = reply.hits[0]
    assert hit.post.post.id == "p2"
    assert hit.post.enrichment.sentiment == POS
    assert hit.post.enrichment.sentiment_scores.positive == pytest.approx(0.8)
    assert hit.post.post.author.follower_count == 40
    assert hit.post.post.created_at.seconds == BASE_SECONDS + 120
    assert not hit.post.enrichment.embedding, "hits leave the embedding out"
    assert hit.score > 0


def test_reindexing_the_same_post_replaces_it(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    again = corpus(indexed)[0]
    again.enrichment.sentiment = POS
    assert search.IndexPosts(search_pb2.IndexPostsRequest(posts=[again, again])).indexed == 2
    assert search.Count(search_pb2.CountRequest(tenant=indexed)).count == 5
    post = search.GetPost(search_pb2.GetPostRequest(tenant=indexed, channel="mastodon", id="p1")).post
    assert post.enrichment.sentiment == POS


def test_boolean_query_language(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    def found(query: str) -> set[str]:
        return set(ids(search.Search(search_pb2.SearchRequest(tenant=indexed, query=query))))

    assert found("route AND bus") == {"p1", "p5"}
    assert found("bus AND NOT late") == {"p5"}
    assert found('"passport office"') == {"p3"}
    assert found("streetlights OR passport") == {"p2", "p3"}
    assert found("(late OR friendly) AND sentiment:negative") == {"p1"}
    assert found("stre*") == {"p2"}
    assert found("channel:reddit") == {"p2"}


def test_filters(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    def found(**filters: object) -> set[str]:
        request = search_pb2.SearchRequest(tenant=indexed, filters=search_pb2.SearchFilters(**filters))  # type: ignore[arg-type]
        return set(ids(search.Search(request)))

    assert found(channels=["reddit", "rss"]) == {"p2", "p4"}
    assert found(languages=["fr"]) == {"p4"}
    assert found(sentiments=[NEG]) == {"p1", "p4"}
    assert found(topics=["transit"]) == {"p1", "p4", "p5"}
    assert found(min_reach=300) == {"p1", "p4"}
    start, end = Timestamp(), Timestamp()
    start.FromSeconds(BASE_SECONDS + 2 * 60)
    end.FromSeconds(BASE_SECONDS + 4 * 60)
    assert found(created_from=start, created_to=end) == {"p2", "p3"}


def test_pagination_has_no_gaps_or_repeats(search: search_pb2_grpc.SearchServiceStub, tenant: str) -> None:
    posts = [enriched(tenant, f"bulk-{n}", f"Pothole report number {n} on Main Street near the school.",
                      minute=n % 7, followers=n % 3) for n in range(23)]
    assert search.IndexPosts(search_pb2.IndexPostsRequest(posts=posts)).indexed == 23
    for order in (search_pb2.SORT_ORDER_RELEVANCE, search_pb2.SORT_ORDER_NEWEST, search_pb2.SORT_ORDER_REACH):
        seen: list[str] = []
        token = ""
        while True:
            reply = search.Search(search_pb2.SearchRequest(tenant=tenant, query="pothole", page_size=5,
                                                           page_token=token, sort=order))
            assert reply.total == 23
            seen += ids(reply)
            token = reply.next_page_token
            if not token:
                break
        assert sorted(seen) == sorted(f"bulk-{n}" for n in range(23)), order
    newest = search.Search(search_pb2.SearchRequest(tenant=tenant, sort=search_pb2.SORT_ORDER_NEWEST, page_size=3))
    minutes = [hit.post.post.created_at.seconds for hit in newest.hits]
    assert minutes == sorted(minutes, reverse=True)


def test_highlights_wrap_matched_terms(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    hit = search.Search(search_pb2.SearchRequest(tenant=indexed, query="passport")).hits[0]
    assert any("<em>passport</em>" in fragment for fragment in hit.highlights)


def test_french_query_matches_an_inflected_word(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    # The text says "manifestations"; the French analyzer of text_fr stems both to the same term.
    reply = search.Search(search_pb2.SearchRequest(tenant=indexed, query="manifestation"))
    assert ids(reply) == ["p4"]
    assert any("<em>" in fragment for fragment in reply.hits[0].highlights)
    assert search.Count(search_pb2.CountRequest(tenant=indexed, query="text:manifestation")).count == 0


def test_count_and_aggregate(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    assert search.Count(search_pb2.CountRequest(tenant=indexed)).count == 5
    assert search.Count(search_pb2.CountRequest(tenant=indexed, query="bus")).count == 2
    by_sentiment = search.Aggregate(
        search_pb2.AggregateRequest(tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_SENTIMENT)
    )
    assert by_sentiment.total == 5
    assert {b.key: b.count for b in by_sentiment.buckets} == {"negative": 2, "positive": 2, "neutral": 1}
    by_channel = search.Aggregate(search_pb2.AggregateRequest(
        tenant=indexed, dimension=search_pb2.AGGREGATE_DIMENSION_CHANNEL, size=1,
        filters=search_pb2.SearchFilters(topics=["transit"])))
    assert by_channel.total == 3
    assert [(b.key, b.count) for b in by_channel.buckets] == [("mastodon", 2)]


def test_get_post_and_not_found(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    post = search.GetPost(search_pb2.GetPostRequest(tenant=indexed, channel="rss", id="p4")).post
    assert post.post.language == "fr" and post.post.source == "https://news.example.org/feed"
    assert len(post.enrichment.embedding) == 384
    with pytest.raises(grpc.RpcError) as missing:
        search.GetPost(search_pb2.GetPostRequest(tenant=indexed, channel="rss", id="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_tenants_never_see_each_other(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    other = f"{indexed}-other"
    search.IndexPosts(search_pb2.IndexPostsRequest(posts=[
        enriched(other, "p1", "Secret note from the other agency about the bus depot.", sentiment=NEG)
    ]))
    assert ids(search.Search(search_pb2.SearchRequest(tenant=indexed, query="depot"))) == []
    assert search.Count(search_pb2.CountRequest(tenant=other)).count == 1
    mine = search.GetPost(search_pb2.GetPostRequest(tenant=indexed, channel="mastodon", id="p1")).post
    assert "depot" not in mine.post.text
    never_indexed = search.Search(search_pb2.SearchRequest(tenant="nobody-here"))
    assert never_indexed.total == 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (search_pb2.SearchRequest(tenant="", query="bus"), "tenant"),
        (search_pb2.SearchRequest(tenant="Bad Tenant"), "tenant"),
        (search_pb2.SearchRequest(tenant="ok", query="*late"), "query"),
        (search_pb2.SearchRequest(tenant="ok", query="b*s"), "query"),
        (search_pb2.SearchRequest(tenant="ok", query="x" * 1001), "query"),
        (search_pb2.SearchRequest(tenant="ok", query="secret_field:1"), "query"),
        (search_pb2.SearchRequest(tenant="ok", query="/bu.*/"), "query"),
        (search_pb2.SearchRequest(tenant="ok", page_size=101), "page_size"),
        (search_pb2.SearchRequest(tenant="ok", page_token="not-a-token!"), "page_token"),
        (search_pb2.SearchRequest(tenant="ok", filters=search_pb2.SearchFilters(min_reach=-1)), "filters.min_reach"),
        (search_pb2.SearchRequest(tenant="ok", filters=search_pb2.SearchFilters(sentiments=[UNSET])),
         "filters.sentiments"),
        (search_pb2.AggregateRequest(tenant="ok"), "dimension"),
        (search_pb2.AggregateRequest(tenant="ok", dimension=search_pb2.AGGREGATE_DIMENSION_SENTIMENT, size=500),
         "size"),
        (search_pb2.GetPostRequest(tenant="ok", channel="mastodon"), "id"),
        (search_pb2.GetPostRequest(tenant="ok", id="x"), "channel"),
        (search_pb2.IndexPostsRequest(), "posts"),
        (search_pb2.IndexPostsRequest(posts=[post_pb2.EnrichedPost(post=post_pb2.Post(id="x", channel="rss"))]),
         "posts[0].post.tenant"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(
    search: search_pb2_grpc.SearchServiceStub, request_: object, field: str
) -> None:
    method = {
        search_pb2.SearchRequest: search.Search, search_pb2.AggregateRequest: search.Aggregate,
        search_pb2.GetPostRequest: search.GetPost, search_pb2.IndexPostsRequest: search.IndexPosts,
    }[type(request_)]
    with pytest.raises(grpc.RpcError) as error:
        method(request_)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:"), error.value.details()


def test_page_token_of_another_sort_is_refused(search: search_pb2_grpc.SearchServiceStub, indexed: str) -> None:
    first = search.Search(search_pb2.SearchRequest(tenant=indexed, page_size=2, sort=search_pb2.SORT_ORDER_NEWEST))
    with pytest.raises(grpc.RpcError) as error:
        search.Search(search_pb2.SearchRequest(tenant=indexed, page_size=2, page_token=first.next_page_token,
                                               sort=search_pb2.SORT_ORDER_REACH))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in error.value.details()


def test_rejected_document_comes_back_as_an_index_error(
    search: search_pb2_grpc.SearchServiceStub, tenant: str
) -> None:
    good = enriched(tenant, "good", "Snow ploughs have not cleared Maple Avenue yet.", sentiment=NEG)
    bad = enriched(tenant, "bad", "Garbage collection skipped our street twice.", sentiment=NEG)
    del bad.enrichment.embedding[10:]
    reply = search.IndexPosts(search_pb2.IndexPostsRequest(posts=[good, bad]))
    assert reply.indexed == 1
    assert [error.id for error in reply.errors] == ["bad"]
    assert "dimension" in reply.errors[0].reason
    assert search.Count(search_pb2.CountRequest(tenant=tenant)).count == 1


def test_elasticsearch_down_is_unavailable() -> None:
    from services.devstack.launch import free_port

    settings = Settings(es_url=f"http://127.0.0.1:{free_port()}")
    es = connect(settings)
    server = build_server(settings, Indexer(es, "civic-posts", refresh=False), Searcher(es, "civic-posts"),
                          port=0).start()
    try:
        with channel(f"127.0.0.1:{server.port}", settings) as chan:
            stub = search_pb2_grpc.SearchServiceStub(chan)
            with pytest.raises(grpc.RpcError) as error:
                stub.Count(search_pb2.CountRequest(tenant="city"))
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.RpcError) as error:
                stub.IndexPosts(search_pb2.IndexPostsRequest(posts=[enriched("city", "p", "Road closed.")]))
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
