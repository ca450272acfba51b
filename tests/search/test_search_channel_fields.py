"""What channels say beyond the text, through SearchService and a real Elasticsearch: indexed, filtered,
queried and read back; added to an index made before they existed; and removed with the post."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from elasticsearch import Elasticsearch

from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search import deadletter
from services.search.client import connect
from services.search.documents import document_id
from services.search.indexing import Indexer
from services.search.mapping import (
    CHANNEL_PROPERTIES,
    PROPERTIES,
    alias_name,
    first_index_name,
    index_template,
    mappings_component,
    settings_component,
    settings_template,
)
from services.search.server import build_server
from services.search.service import Searcher
from services.search.topics.store import TopicStore
from tests.search.helpers import enriched

pytestmark = pytest.mark.slow


@dataclass
class Served:
    stub: search_pb2_grpc.SearchServiceStub
    es: Elasticsearch
    settings: Settings


@pytest.fixture(scope="module")
def served(elasticsearch_url: str) -> Iterator[Served]:
    settings = Settings(es_url=elasticsearch_url, es_refresh_on_index=True, index_prefix="civic-posts")
    es = connect(settings)
    server = build_server(settings, Indexer(es, settings.index_prefix, refresh=True), Searcher(es, "civic-posts"),
                          port=0).start()
    with channel(f"127.0.0.1:{server.port}", settings) as chan:
        yield Served(search_pb2_grpc.SearchServiceStub(chan), es, settings)
    server.stop()
    es.close()


def rich(tenant: str) -> list[post_pb2.EnrichedPost]:
    reply = enriched(tenant, "c2", "Same here, the bins on Oak St were skipped too", channel_name="mastodon")
    reply.post.parent_id, reply.post.root_id, reply.post.conversation_id = "c1", "c1", "c1"
    reply.post.hashtags.extend(["bins", "oakst"])
    reply.post.mentions.append("cityhall@gov.example")
    reply.post.sensitive, reply.post.content_warning = True, "rubbish photos"
    reply.post.edited_at.FromSeconds(1_763_000_600)
    reply.post.media.add(type="image", url="https://files.example/bins.jpg", alt_text="Overflowing green bins")
    reply.post.links.append("https://city.example/waste")
    reply.post.sender_languages.append("en-GB")
    root = enriched(tenant, "c1", "Bins not collected on our street this week #Bins", channel_name="mastodon")
    root.post.conversation_id = "c1"
    root.post.hashtags.append("bins")
    request = enriched(tenant, "r1", "Pothole in the bike lane", channel_name="open311")
    request.post.service_request.status, request.post.service_request.service_code = "open", "POT-01"
    request.post.service_request.agency, request.post.service_request.address = "Streets", "8TH AVE and JUDAH ST"
    request.post.service_request.updated_at.FromSeconds(1_763_000_900)
    alert = enriched(tenant, "a1", "Flood Warning for the lower valley", channel_name="rss")
    alert.post.categories.append("Met")
    warning = alert.post.official_alert
    warning.event, warning.severity, warning.urgency, warning.area = "Flood Warning", "severe", "expected", "Valley"
    warning.area_polygon.extend(post_pb2.GeoPoint(lat=lat, lon=lon) for lat, lon in
                                [(38.47, -120.14), (38.34, -119.95), (38.52, -119.74), (38.47, -120.14)])
    warning.expires_at.FromSeconds(1_763_090_000)
    return [root, reply, request, alert]


def ids(reply: search_pb2.SearchResponse) -> list[str]:
    return sorted(hit.post.post.id for hit in reply.hits)


def search(served: Served, tenant: str, query: str = "", **filters: object) -> search_pb2.SearchResponse:
    request = search_pb2.SearchRequest(tenant=tenant, query=query, filters=search_pb2.SearchFilters(**filters))  # type: ignore[arg-type]
    return served.stub.Search(request, timeout=30)


def test_channel_fields_are_indexed_filtered_queried_and_read_back(served: Served, tenant: str) -> None:
    posts = rich(tenant)
    assert served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts), timeout=30).indexed == 4
    got = served.stub.GetPost(search_pb2.GetPostRequest(tenant=tenant, channel="mastodon", id="c2"), timeout=30)
    for name in ("parent_id", "root_id", "conversation_id", "edited_at", "sensitive", "content_warning", "hashtags",
                 "mentions", "media", "links", "sender_languages"):
        assert getattr(got.post.post, name) == getattr(posts[1].post, name), name
    for post_id, channel_name, field in (("r1", "open311", "service_request"), ("a1", "rss", "official_alert")):
        stored = served.stub.GetPost(search_pb2.GetPostRequest(tenant=tenant, channel=channel_name, id=post_id))
        assert getattr(stored.post.post, field) == getattr(next(p for p in posts if p.post.id == post_id).post, field)

    assert ids(search(served, tenant, hashtags=["#Bins"])) == ["c1", "c2"]
    assert ids(search(served, tenant, exclude_sensitive=True)) == ["a1", "c1", "r1"]
    assert ids(search(served, tenant, conversation_id="c1")) == ["c1", "c2"]
    assert ids(search(served, tenant, alert_severities=["severe"])) == ["a1"]
    assert ids(search(served, tenant, service_statuses=["open"])) == ["r1"]
    assert ids(search(served, tenant, "hashtag:OakSt")) == ["c2"]
    assert ids(search(served, tenant, "mention:cityhall@gov.example OR category:Met")) == ["a1", "c2"]
    assert ids(search(served, tenant, "sensitive:false AND status:open AND service_code:POT-01")) == ["r1"]
    assert ids(search(served, tenant, "severity:severe AND agency:Streets")) == []
    # The CAP area's corners are points: the alerts with a corner in a box.
    near = served.es.search(index=alias_name("civic-posts", tenant), query={"geo_bounding_box": {
        "official_alert.area_polygon": {"top_left": {"lat": 38.6, "lon": -120.2},
                                        "bottom_right": {"lat": 38.3, "lon": -119.9}}}})
    assert [hit["_source"]["post_id"] for hit in near["hits"]["hits"]] == ["a1"]

    with pytest.raises(grpc.RpcError) as error:
        search(served, tenant, alert_severities=["apocalyptic"])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("filters.alert_severities")


def test_an_index_made_before_the_channel_fields_gets_them(served: Served, tenant: str) -> None:
    prefix = "older-posts"  # its own templates: what a cluster upgraded from the previous release has
    older = {name: spec for name, spec in PROPERTIES.items() if name not in CHANNEL_PROPERTIES}
    served.es.cluster.put_component_template(name=mappings_component(prefix),
                                             template={"mappings": {"dynamic": "strict", "properties": older}})
    served.es.cluster.put_component_template(name=settings_component(prefix), template=settings_template())
    served.es.indices.put_index_template(name=prefix, **index_template(prefix))
    alias = alias_name(prefix, tenant)
    served.es.indices.create(index=first_index_name(prefix, tenant), aliases={alias: {"is_write_index": True}})
    assert "hashtags" not in next(iter(served.es.indices.get_mapping(index=alias).body.values()))["mappings"][
        "properties"]
    outcome = Indexer(served.es, prefix, refresh=True).index(rich(tenant))
    assert outcome.indexed == 4 and outcome.errors == []
    mapping = next(iter(served.es.indices.get_mapping(index=alias).body.values()))["mappings"]["properties"]
    assert mapping["official_alert"]["properties"]["area_polygon"] == {"type": "geo_point"}
    found = served.es.search(index=alias, query={"terms": {"hashtags": ["bins"]}})
    assert sorted(hit["_source"]["post_id"] for hit in found["hits"]["hits"]) == ["c1", "c2"]


def test_remove_posts_takes_a_post_out_of_search_dead_letters_and_marks(served: Served, tenant: str) -> None:
    served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=rich(tenant)), timeout=30)
    doc_id = document_id(tenant, "mastodon", "c2")
    letters = deadletter.dead_letter_index(deadletter.DEFAULT_PREFIX, tenant)
    deadletter.store(served.es, deadletter.DEFAULT_PREFIX, [deadletter.Refused(
        {"tenant": tenant, "channel": "mastodon", "post_id": "c2", "doc_id": doc_id, "text": "the words"},
        "mapper_parsing_exception")], refresh=True)
    marks = TopicStore(served.es, served.settings.topics_index_prefix)
    marks.ensure_indices()
    marks.put_marks(tenant, [{"topic": "waste", "doc_id": doc_id, "channel": "mastodon", "post_id": "c2",
                              "relevant": True, "by": "ana", "text": "Same here, the bins", "embedding": [0.1]}])

    request = search_pb2.RemovePostsRequest(tenant=tenant, posts=[post_pb2.PostRef(channel="mastodon", id="c2"),
                                                                  post_pb2.PostRef(channel="rss", id="never")])
    reply = served.stub.RemovePosts(request, timeout=30)
    assert (reply.removed, reply.dead_letters_removed, reply.marks_cleared) == (1, 1, 1)
    assert ids(search(served, tenant)) == ["a1", "c1", "r1"]  # at once: no refresh to wait for
    count = served.stub.Count(search_pb2.CountRequest(tenant=tenant, query="bins"), timeout=30).count
    assert count == 1
    with pytest.raises(grpc.RpcError) as gone:
        served.stub.GetPost(search_pb2.GetPostRequest(tenant=tenant, channel="mastodon", id="c2"), timeout=30)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert served.es.count(index=letters)["count"] == 0
    (mark,) = marks.marks(tenant, "waste")
    assert "text" not in mark and mark["relevant"] is True and mark["embedding"] == [0.1]
    again = served.stub.RemovePosts(request, timeout=30)  # idempotent
    assert (again.removed, again.dead_letters_removed, again.marks_cleared) == (0, 0, 0)

    with pytest.raises(grpc.RpcError) as bad:
        served.stub.RemovePosts(search_pb2.RemovePostsRequest(tenant=tenant), timeout=30)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and (bad.value.details() or "").startswith("posts")
