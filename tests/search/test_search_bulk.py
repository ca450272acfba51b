"""The shared bulk writer against the real Elasticsearch: concurrent IndexPosts calls merged into
fewer bulk requests with per-caller results, flushes by count, bytes and time, and overload."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from elasticsearch import Elasticsearch

from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.bulk_writer import BulkPolicy
from services.search.client import connect
from services.search.indexing import Indexer
from services.search.mapping import alias_name
from services.search.server import build_server
from services.search.service import Searcher
from tests.search.helpers import enriched

pytestmark = pytest.mark.slow


@dataclass
class Served:
    stub: search_pb2_grpc.SearchServiceStub
    indexer: Indexer
    es: Elasticsearch


@contextlib.contextmanager
def serving(url: str, policy: BulkPolicy) -> Iterator[Served]:
    settings = Settings(es_url=url, grpc_workers=32)
    es = connect(settings)
    indexer = Indexer(es, "civic-posts", refresh=True, policy=policy)
    server = build_server(settings, indexer, Searcher(es, "civic-posts"), port=0).start()
    try:
        with channel(f"127.0.0.1:{server.port}", settings) as chan:
            yield Served(search_pb2_grpc.SearchServiceStub(chan), indexer, es)
    finally:
        server.stop()
        indexer.close()
        es.close()


def posts(tenant: str, prefix: str, n: int) -> list[post_pb2.EnrichedPost]:
    return [enriched(tenant, f"{prefix}-{k}", f"Street light {k} is out on block {prefix}.") for k in range(n)]


def bulk_operations(es: Elasticsearch, tenant: str) -> int:
    """Bulk requests the tenant's index received, as Elasticsearch itself counts them (one shard)."""
    stats = es.indices.stats(index=alias_name("civic-posts", tenant), metric="bulk")
    return int(stats["_all"]["primaries"]["bulk"]["total_operations"])


def test_concurrent_calls_share_bulk_requests_and_get_their_own_results(
    elasticsearch_url: str, tenant: str
) -> None:
    callers = 12
    with serving(elasticsearch_url, BulkPolicy(flush_interval_s=0.5)) as served:
        served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "warm", 1)))  # creates the index
        before = (served.indexer.writer.stats.bulk_requests, bulk_operations(served.es, tenant))
        batches = {n: posts(tenant, f"c{n}", 4) for n in range(callers)}
        del batches[5][2].enrichment.embedding[7:]  # refused for good: only caller 5 hears of it
        replies: dict[int, search_pb2.IndexPostsResponse] = {}
        start = threading.Barrier(callers)

        def call(n: int) -> None:
            start.wait()
            replies[n] = served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=batches[n]), timeout=60)

        threads = [threading.Thread(target=call, args=(n,)) for n in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        requests = served.indexer.writer.stats.bulk_requests - before[0]
        assert requests <= 3, f"{callers} calls took {requests} bulk requests"
        assert bulk_operations(served.es, tenant) - before[1] == requests
        assert max(served.indexer.writer.stats.callers_per_request) >= callers // 3
        for n, reply in replies.items():
            if n == 5:
                assert (reply.indexed, reply.dead_lettered) == (3, 1)
                assert [error.id for error in reply.errors] == ["c5-2"] and "dimension" in reply.errors[0].reason
            else:
                assert (reply.indexed, reply.dead_lettered, list(reply.errors)) == (4, 0, [])
        count = served.stub.Count(search_pb2.CountRequest(tenant=tenant))
        assert count.count == 1 + 4 * callers - 1


def test_a_full_batch_leaves_at_once_by_count_and_by_bytes(elasticsearch_url: str, tenant: str) -> None:
    with serving(elasticsearch_url, BulkPolicy(max_docs=10, flush_interval_s=60)) as served:
        started = time.monotonic()
        reply = served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "count", 20)), timeout=30)
        assert reply.indexed == 20 and time.monotonic() - started < 20
        assert served.indexer.writer.stats.bulk_requests == 2
    with serving(elasticsearch_url, BulkPolicy(max_bytes=1, flush_interval_s=60)) as served:
        reply = served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "bytes", 3)), timeout=30)
        assert reply.indexed == 3
        assert served.indexer.writer.stats.bulk_requests == 3, "each document alone is over the byte bound"


def test_a_partial_batch_leaves_after_the_flush_interval(elasticsearch_url: str, tenant: str) -> None:
    with serving(elasticsearch_url, BulkPolicy(flush_interval_s=1.0)) as served:
        served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "warm", 1)))
        started = time.monotonic()
        reply = served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "time", 3)), timeout=30)
        waited = time.monotonic() - started
        assert reply.indexed == 3 and 1.0 <= waited < 10
        assert served.indexer.writer.stats.bulk_requests == 2


def test_a_queue_beyond_its_bound_is_resource_exhausted(elasticsearch_url: str, tenant: str) -> None:
    with serving(elasticsearch_url, BulkPolicy(max_queued_docs=10, flush_interval_s=2.0)) as served:
        served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "warm", 1)))
        first: list[search_pb2.IndexPostsResponse] = []
        waiting = threading.Thread(target=lambda: first.append(
            served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "a", 8)), timeout=30)))
        waiting.start()
        deadline = time.monotonic() + 5
        while served.indexer.writer.queued() < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(grpc.RpcError) as error:
            served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "b", 5)), timeout=30)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        waiting.join()
        assert first[0].indexed == 8
        assert served.stub.Count(search_pb2.CountRequest(tenant=tenant)).count == 9, "nothing of b was taken"


def block_writes(es: Elasticsearch, tenant: str, blocked: bool) -> None:
    """The block Elasticsearch itself sets at the flood-stage disk watermark; writes get 429 meanwhile."""
    es.indices.put_settings(index=alias_name("civic-posts", tenant),
                            settings={"index.blocks.read_only_allow_delete": blocked or None})


def test_429s_are_retried_with_backoff_until_the_cluster_takes_the_posts(
    elasticsearch_url: str, tenant: str
) -> None:
    with serving(elasticsearch_url, BulkPolicy(flush_interval_s=0.01, retry_rounds=6, backoff_s=0.2)) as served:
        served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "warm", 1)))
        block_writes(served.es, tenant, True)
        replies: list[search_pb2.IndexPostsResponse] = []
        waiting = threading.Thread(target=lambda: replies.append(
            served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "r", 3)), timeout=60)))
        waiting.start()
        time.sleep(1.0)  # the first rounds (0.2 s, 0.4 s) are refused
        block_writes(served.es, tenant, False)
        waiting.join()
        assert (replies[0].indexed, replies[0].dead_lettered, list(replies[0].errors)) == (3, 0, [])
        assert served.stub.Count(search_pb2.CountRequest(tenant=tenant)).count == 4


def test_429s_past_the_last_retry_are_errors_not_dead_letters(elasticsearch_url: str, tenant: str) -> None:
    with serving(elasticsearch_url, BulkPolicy(flush_interval_s=0.01, retry_rounds=2, backoff_s=0.05)) as served:
        served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "warm", 1)))
        block_writes(served.es, tenant, True)
        try:
            reply = served.stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts(tenant, "x", 2)), timeout=60)
        finally:
            block_writes(served.es, tenant, False)
        assert (reply.indexed, reply.dead_lettered) == (0, 0)
        assert [e.id for e in reply.errors] == ["x-0", "x-1"]
        assert "TOO_MANY_REQUESTS" in reply.errors[0].reason, reply.errors[0].reason
        letters = served.stub.ReplayDeadLetters(search_pb2.ReplayDeadLettersRequest(tenant=tenant))
        assert letters.total == 0, "a transient refusal is never a dead letter"
