"""A bulk request shared by several IndexPosts calls stays in every caller's trace: the search
process (spawned, exporting over OTLP to a real receiver) runs it in a span that continues the first
caller's `index_posts` span and links to each other caller's."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from civic.listening.v1 import search_pb2, search_pb2_grpc
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from tests.fixtures.otlp import Received
from tests.search.helpers import enriched

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CALLERS = 4


def test_the_shared_bulk_request_continues_one_caller_and_links_the_others(
    tmp_path: Path, elasticsearch_url: str, otlp_receiver: Received, tenant: str
) -> None:
    port = free_port()
    env = {**otlp_receiver.env(), "ES_URL": elasticsearch_url, "CIVIC_SEARCH_PORT": str(port),
           "CIVIC_INDEX_PREFIX": f"test-bulk-otel-{uuid.uuid4().hex[:8]}", "CIVIC_ES_REFRESH_ON_INDEX": "true",
           "CIVIC_SEARCH_BULK_FLUSH_INTERVAL_S": "1.0"}
    process = spawn(["services.search"], env, tmp_path / "search.log")
    try:
        target = f"127.0.0.1:{port}"
        wait_healthy(target, 60, process=process)
        with grpc.insecure_channel(target) as chan:
            stub = search_pb2_grpc.SearchServiceStub(chan)
            stub.IndexPosts(search_pb2.IndexPostsRequest(posts=[enriched(tenant, "warm", "Warm up.")]), timeout=30)
            start = threading.Barrier(CALLERS)

            def call(n: int) -> None:
                start.wait()
                posts = [enriched(tenant, f"c{n}-{k}", f"Leaking hydrant {k} on street {n}.") for k in range(2)]
                assert stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts), timeout=30).indexed == 2

            threads = [threading.Thread(target=call, args=(n,)) for n in range(CALLERS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        def shared() -> dict[str, Any] | None:
            return next((s for s in otlp_receiver.spans()
                         if s["name"] == "bulk_write" and s["attributes"].get("civic.batch.callers", 0) > 1), None)

        otlp_receiver.wait_for("shared bulk span", lambda: shared() is not None)
        spans = otlp_receiver.spans()
        bulk_write = shared()
        assert bulk_write is not None
        by_id = {s["span_id"]: s for s in spans}
        callers = [s for s in spans if s["name"] == "index_posts" and "warm" not in s["attributes"]["civic.post_ids"]]
        assert len(callers) == CALLERS
        parent = by_id[bulk_write["parent_span_id"]]
        assert parent["name"] == "index_posts" and parent["service"] == "search"
        linked = {link["span_id"] for link in bulk_write["links"]}
        caller_ids = {s["span_id"] for s in callers}
        # Requests may split between bulk requests: every caller is reached from one of them.
        in_shared = {parent["span_id"]} | linked
        assert in_shared <= caller_ids and len(in_shared) == bulk_write["attributes"]["civic.batch.callers"]
        assert {link["trace_id"] for link in bulk_write["links"]} <= {s["trace_id"] for s in callers}
        es_bulk = [s for s in spans if s["name"] == "bulk" and s["parent_span_id"] == bulk_write["span_id"]]
        assert es_bulk and es_bulk[0]["attributes"].get("db.system") == "elasticsearch"
    finally:
        stop_pid(process.pid)
