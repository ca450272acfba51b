"""Indexing throughput: SearchService.IndexPosts over gRPC vs raw helpers.bulk, same server, same run.

Both write the same documents (two tenants, identical posts) into indices made from the same
template. The raw side gets its documents already converted to dicts, outside the timing; the
service side pays for everything (protobuf over gRPC, conversion, bulk). Rounds alternate between
the two so that the node's warm-up and merges do not favour one side. With `--callers N`, N
clients send their `--batch`-post calls at once, as several forwarders do, and the service merges
them into shared bulk requests (the count of bulk requests the index received is printed).

Run: .venv/bin/python -m bench.search_indexing [--posts 4000] [--rounds 3] [--batch 500] [--callers 1]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from elasticsearch import Elasticsearch, helpers

from bench.search_common import local_stack, make_posts
from civic.listening.v1 import search_pb2, search_pb2_grpc
from services.search.client import connect
from services.search.documents import to_document
from services.search.mapping import alias_name, ensure_tenant_index, install_templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--callers", type=int, default=1, help="concurrent IndexPosts clients")
    args = parser.parse_args()
    with local_stack() as (settings, chan):
        stub = search_pb2_grpc.SearchServiceStub(chan)
        es = connect(settings)
        install_templates(es, settings.index_prefix)
        raw_rate, service_rate, bulk_requests = [], [], []
        for round_ in range(args.rounds):
            service_posts = make_posts(f"bench-svc-{round_}", args.posts)
            raw_tenant = f"bench-raw-{round_}"
            raw_alias = ensure_tenant_index(es, settings.index_prefix, raw_tenant)
            raw_docs = [to_document(p) for p in make_posts(raw_tenant, args.posts)]
            actions = [{"_index": raw_alias, "_id": d["doc_id"], "_source": d} for d in raw_docs]
            stub.IndexPosts(search_pb2.IndexPostsRequest(posts=service_posts[:1]))  # creates the index
            for side in (("raw", "service") if round_ % 2 == 0 else ("service", "raw")):
                started = time.perf_counter()
                if side == "raw":
                    ok, errors = helpers.bulk(es, actions, chunk_size=args.batch, raise_on_error=False)
                    assert ok == args.posts and not errors, errors
                    raw_rate.append(args.posts / (time.perf_counter() - started))
                else:
                    before = bulk_operations(es, alias_name(settings.index_prefix, f"bench-svc-{round_}"))
                    batches = [service_posts[start:start + args.batch] for start in range(0, args.posts, args.batch)]
                    with ThreadPoolExecutor(max_workers=args.callers) as pool:
                        written = sum(pool.map(lambda batch: stub.IndexPosts(
                            search_pb2.IndexPostsRequest(posts=batch), timeout=300).indexed, batches))
                    assert written == args.posts
                    service_rate.append(args.posts / (time.perf_counter() - started))
                    bulk_requests.append(
                        bulk_operations(es, alias_name(settings.index_prefix, f"bench-svc-{round_}")) - before)
            print(f"round {round_ + 1}: raw helpers.bulk {raw_rate[-1]:,.0f} docs/s, "
                  f"IndexPosts {service_rate[-1]:,.0f} docs/s in {bulk_requests[-1]} bulk requests", flush=True)
        es.close()
    raw, service = sum(raw_rate) / len(raw_rate), sum(service_rate) / len(service_rate)
    print(f"posts per side per round: {args.posts}, batch {args.batch}, callers {args.callers}, "
          f"rounds {args.rounds}")
    print(f"raw helpers.bulk: {raw:,.0f} docs/s (mean)")
    print(f"IndexPosts:       {service:,.0f} docs/s (mean)")
    print(f"ratio: {100 * service / raw:.1f} % of raw (target >= 85 %)")


def bulk_operations(es: Elasticsearch, index: str) -> int:
    """Bulk requests an index has received, as Elasticsearch counts them (one shard)."""
    stats = es.indices.stats(index=index, metric="bulk")
    return int(stats["_all"]["primaries"]["bulk"]["total_operations"])


if __name__ == "__main__":
    main()
