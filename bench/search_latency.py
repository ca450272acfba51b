"""Search latency: SearchService.Search over gRPC vs the equivalent direct Elasticsearch query.

The direct query is exactly what the service sends (services.search.service.search_body: same
query, filters, sort, highlight, size, source filtering, total hits), so the difference is the
service's own cost: gRPC, parsing the query language, and building protobuf hits. Each query runs on
both sides back to back, in an order drawn per query (the second of two identical queries finds
warmer caches). A gRPC health check in the same loop gives the floor: a bare round trip to the
server process, which no server code can go below.

Run: .venv/bin/python -m bench.search_latency [--posts 3000] [--repeats 30]
"""

from __future__ import annotations

import argparse
import functools
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.search_common import local_stack, make_posts
from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.search.client import connect
from services.search.mapping import alias_name
from services.search.service import search_body

TENANT = "bench-latency"


def requests() -> list[search_pb2.SearchRequest]:
    negative = [post_pb2.SENTIMENT_LABEL_NEGATIVE]
    return [
        search_pb2.SearchRequest(tenant=TENANT, query="bus AND late"),
        search_pb2.SearchRequest(tenant=TENANT, query='"water bill" OR outage', sort=search_pb2.SORT_ORDER_NEWEST),
        search_pb2.SearchRequest(tenant=TENANT, query="(pothole OR road) AND NOT snow",
                                 filters=search_pb2.SearchFilters(channels=["reddit", "rss"], sentiments=negative)),
        search_pb2.SearchRequest(tenant=TENANT, query="stat* channel:mastodon", page_size=50,
                                 sort=search_pb2.SORT_ORDER_REACH),
        search_pb2.SearchRequest(tenant=TENANT, filters=search_pb2.SearchFilters(languages=["fr"], min_reach=1000)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="draws the order of the two sides per query")
    args = parser.parse_args()
    order = random.Random(args.seed)
    with local_stack() as (settings, chan):
        stub = search_pb2_grpc.SearchServiceStub(chan)
        health = health_pb2_grpc.HealthStub(chan)
        posts = make_posts(TENANT, args.posts)
        for start in range(0, len(posts), 500):
            stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts[start:start + 500]), timeout=300)
        es = connect(settings)
        alias = alias_name(settings.index_prefix, TENANT)
        es.indices.refresh(index=alias)
        es.indices.forcemerge(index=alias, max_num_segments=1)
        queries = requests()
        sides = ("direct", "grpc", "round_trip")
        timings: dict[str, list[list[float]]] = {side: [[] for _ in queries] for side in sides}
        for repeat in range(args.repeats + 5):
            for number, request in enumerate(queries):
                body = search_body(request)
                calls: dict[str, Callable[[], Any]] = {
                    "direct": functools.partial(es.search, index=alias, **body),
                    "grpc": functools.partial(stub.Search, request),
                    "round_trip": functools.partial(health.Check, health_pb2.HealthCheckRequest()),
                }
                drawn = list(calls)
                order.shuffle(drawn)
                results: dict[str, Any] = {}
                for side in drawn:
                    started = time.perf_counter()
                    results[side] = calls[side]()
                    if repeat >= 5:  # the first rounds warm caches on both sides
                        timings[side][number].append((time.perf_counter() - started) * 1000)
                assert results["grpc"].total == results["direct"]["hits"]["total"]["value"]
        es.close()
    print(f"{args.posts} posts, {len(queries)} queries x {args.repeats} repeats per side")
    print(f"{'query':<42} {'direct p50':>10} {'Search p50':>10} {'overhead':>18}")
    overheads = []
    for request, direct, served in zip(queries, timings["direct"], timings["grpc"], strict=True):
        d50, g50 = np.percentile(direct, 50), np.percentile(served, 50)
        overheads.append((g50 - d50) / d50)
        label = request.query or "(filters only)"
        print(f"{label:<42} {d50:8.2f} ms {g50:8.2f} ms {g50 - d50:+6.2f} ms {100 * overheads[-1]:+6.1f} %")
    pooled = {side: [ms for per_query in timings[side] for ms in per_query] for side in timings}
    d50, d99 = np.percentile(pooled["direct"], [50, 99])
    g50, g99 = np.percentile(pooled["grpc"], [50, 99])
    print(f"all queries: direct p50 {d50:.2f} ms (p99 {d99:.2f}), Search p50 {g50:.2f} ms (p99 {g99:.2f})")
    print(f"bare gRPC round trip (health check): p50 {np.percentile(pooled['round_trip'], 50):.2f} ms")
    print(f"p50 overhead, all queries: {g50 - d50:+.2f} ms, {100 * (g50 - d50) / d50:+.1f} %; "
          f"median of the per-query overheads: {100 * float(np.median(overheads)):+.1f} % (target <= 10 %)")


if __name__ == "__main__":
    main()
