"""ReplayDeadLetters over gRPC against the real Elasticsearch: listing and counting a tenant's dead
letters, replaying them after the cause is fixed, and keeping those that are refused again."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from elasticsearch import Elasticsearch

from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.bulk_writer import BulkPolicy, BulkWriter
from services.search.client import connect
from services.search.deadletter import DEFAULT_PREFIX
from services.search.documents import to_document
from services.search.indexing import Indexer
from services.search.mapping import PROPERTIES, alias_name, first_index_name
from services.search.server import build_server
from services.search.service import Searcher
from tests.search.helpers import NEG, enriched

pytestmark = pytest.mark.slow

TONE_FIELDS = ("emotion", "emotion_scores", "offensive", "offensive_score")


@pytest.fixture(scope="module")
def es(elasticsearch_url: str) -> Iterator[Elasticsearch]:
    with connect(Settings(es_url=elasticsearch_url)) as client:
        yield client


@contextlib.contextmanager
def serving(es: Elasticsearch, url: str, prefix: str) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    """A fresh server: its indexer updates a tenant's mapping on its first write there."""
    settings = Settings(es_url=url, index_prefix=prefix)
    indexer = Indexer(es, prefix, refresh=True)
    server = build_server(settings, indexer, Searcher(es, prefix), port=0).start()
    try:
        with channel(f"127.0.0.1:{server.port}", settings) as chan:
            yield search_pb2_grpc.SearchServiceStub(chan)
    finally:
        server.stop()
        indexer.close()


@pytest.fixture
def stub(es: Elasticsearch, elasticsearch_url: str) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with serving(es, elasticsearch_url, "civic-posts") as served:
        yield served


def angry(tenant: str, post_id: str) -> post_pb2.EnrichedPost:
    post = enriched(tenant, post_id, f"Third water main break on our street this month ({post_id}).", sentiment=NEG)
    post.enrichment.emotion = post_pb2.EMOTION_ANGER
    post.enrichment.offensive_score = 0.2
    post.enrichment.model_versions.tone = "tone@1"
    return post


def index_of_an_older_release(es: Elasticsearch, prefix: str, tenant: str) -> None:
    """The tenant's index as a release without the tone fields made it (before any template of this
    prefix existed): strict, and no emotion."""
    older: dict[str, Any] = {name: spec for name, spec in PROPERTIES.items() if name not in TONE_FIELDS}
    es.indices.create(index=first_index_name(prefix, tenant), mappings={"dynamic": "strict", "properties": older},
                      aliases={alias_name(prefix, tenant): {"is_write_index": True}})


def refused_by_the_older_index(es: Elasticsearch, prefix: str, posts: list[post_pb2.EnrichedPost]) -> None:
    """Writes through the bulk writer alone (no mapping update first), as the older release did."""
    writer = BulkWriter(es, BulkPolicy(flush_interval_s=0.01), refresh=True, deadletter_prefix=DEFAULT_PREFIX)
    alias = alias_name(prefix, posts[0].post.tenant)
    results = writer.submit([(alias, to_document(post)) for post in posts]).wait()
    writer.close()
    assert all(result.dead_lettered and "strict_dynamic_mapping" in result.reason for result in results)


def test_letters_are_listed_and_replayed_once_the_mapping_is_fixed(
    es: Elasticsearch, elasticsearch_url: str, tenant: str
) -> None:
    prefix = f"older-{uuid.uuid4().hex[:8]}"
    index_of_an_older_release(es, prefix, tenant)
    refused_by_the_older_index(es, prefix, [angry(tenant, "w1"), angry(tenant, "w2"), angry(tenant, "w3")])
    with serving(es, elasticsearch_url, prefix) as stub:
        replayed_after_the_fix(stub, tenant)


def replayed_after_the_fix(stub: search_pb2_grpc.SearchServiceStub, tenant: str) -> None:
    listed = stub.ReplayDeadLetters(search_pb2.ReplayDeadLettersRequest(tenant=tenant, page_size=2))
    assert (listed.total, listed.remaining, listed.replayed) == (3, 3, 0)
    assert len(listed.letters) == 2 and all("strict_dynamic_mapping" in letter.reason for letter in listed.letters)
    assert listed.letters[0].failed_at.seconds > 0 and listed.letters[0].channel == "mastodon"

    only_w2 = stub.ReplayDeadLetters(search_pb2.ReplayDeadLettersRequest(tenant=tenant, post_ids=["w2"], replay=True))
    assert (only_w2.total, only_w2.replayed, only_w2.indexed, only_w2.remaining) == (1, 1, 1, 0)
    assert not only_w2.errors and not only_w2.letters
    hit = stub.GetPost(search_pb2.GetPostRequest(tenant=tenant, channel="mastodon", id="w2")).post
    assert hit.enrichment.emotion == post_pb2.EMOTION_ANGER, "indexed with the field the old index lacked"

    rest = stub.ReplayDeadLetters(search_pb2.ReplayDeadLettersRequest(tenant=tenant, replay=True))
    assert (rest.total, rest.replayed, rest.indexed, rest.remaining) == (2, 2, 2, 0)
    assert stub.Count(search_pb2.CountRequest(
        tenant=tenant, filters=search_pb2.SearchFilters(emotions=[post_pb2.EMOTION_ANGER]))).count == 3


def test_a_letter_refused_again_stays_with_the_new_reason(
    stub: search_pb2_grpc.SearchServiceStub, tenant: str
) -> None:
    bad = angry(tenant, "short")
    del bad.enrichment.embedding[5:]
    first = stub.IndexPosts(search_pb2.IndexPostsRequest(posts=[bad, angry(tenant, "fine")]))
    assert (first.indexed, first.dead_lettered) == (1, 1)
    before = stub.ReplayDeadLetters(search_pb2.ReplayDeadLettersRequest(tenant=tenant)).letters[0]

    again = stub.ReplayDeadLetters(search_pb2.ReplayDeadLettersRequest(tenant=tenant, replay=True))
    assert (again.total, again.replayed, again.indexed, again.remaining) == (1, 1, 0, 1)
    assert [error.id for error in again.errors] == ["short"] and "dimension" in again.errors[0].reason
    (letter,) = again.letters
    assert letter.post_id == "short" and "dimension" in letter.reason
    assert letter.failed_at.ToNanoseconds() > before.failed_at.ToNanoseconds(), "stored again, one letter"


def test_a_tenant_without_letters_has_none(stub: search_pb2_grpc.SearchServiceStub, tenant: str) -> None:
    reply = stub.ReplayDeadLetters(search_pb2.ReplayDeadLettersRequest(tenant=tenant, replay=True))
    assert (reply.total, reply.replayed, reply.remaining, len(reply.letters)) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (search_pb2.ReplayDeadLettersRequest(), "tenant"),
        (search_pb2.ReplayDeadLettersRequest(tenant="ok", post_ids=["x"] * 1001), "post_ids"),
        (search_pb2.ReplayDeadLettersRequest(tenant="ok", post_ids=[""]), "post_ids"),
        (search_pb2.ReplayDeadLettersRequest(tenant="ok", page_size=101), "page_size"),
    ],
)
def test_bad_replay_requests_name_the_field(
    stub: search_pb2_grpc.SearchServiceStub, request_: search_pb2.ReplayDeadLettersRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.ReplayDeadLetters(request_)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:"), error.value.details()
