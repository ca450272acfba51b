"""Search latency: SearchService.Search over gRPC vs the equivalent direct Elasticsearch query.

The direct query is exactly what the service sends (services.search.service.search_body: same
query, filters, sort, highlight, size, source filtering, total hits), so the difference is the
service's own cost: gRPC, parsing the query language, and building protobuf hits. Calls alternate
between the two sides, query by query.

Run: .venv/bin/python bench/search_latency.py [--posts 5000] [--repeats 40]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.search_common import local_stack, make_posts
from civic.listening.v1 import post_pb2, search_pb2
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
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    with local_stack() as (settings, stub):
        posts = make_posts(TENANT, args.posts)
        for start in range(0, len(posts), 500):
            stub.IndexPosts(search_pb2.IndexPostsRequest(posts=posts[start:start + 500]), timeout=300)
        es = connect(settings)
        alias = alias_name(settings.index_prefix, TENANT)
        es.indices.refresh(index=alias)
        es.indices.forcemerge(index=alias, max_num_segments=1)
        grpc_ms: list[float] = []
        direct_ms: list[float] = []
        for repeat in range(args.repeats + 5):
            for request in requests():
                body = search_body(request)
                started = time.perf_counter()
                direct = es.search(index=alias, **body)
                direct_time = time.perf_counter() - started
                started = time.perf_counter()
                reply = stub.Search(request)
                grpc_time = time.perf_counter() - started
                assert reply.total == direct["hits"]["total"]["value"]
                if repeat >= 5:  # the first rounds warm caches on both sides
                    direct_ms.append(direct_time * 1000)
                    grpc_ms.append(grpc_time * 1000)
        es.close()
    d50, d99 = np.percentile(direct_ms, [50, 99])
    g50, g99 = np.percentile(grpc_ms, [50, 99])
    print(f"{args.posts} posts, {len(requests())} queries x {args.repeats} repeats per side")
    print(f"direct Elasticsearch: p50 {d50:.2f} ms, p99 {d99:.2f} ms")
    print(f"Search via gRPC:      p50 {g50:.2f} ms, p99 {g99:.2f} ms")
    print(f"p50 overhead: {100 * (g50 - d50) / d50:+.1f} % (target <= 10 %)")


if __name__ == "__main__":
    main()
