"""Sustained ingest throughput: the whole pipeline against each of its stages alone, in one run.

Every part runs as its own process, as in production: a private Elasticsearch node (or --es-url),
the inference server (Ray Serve, the real model), search, alerting (with examples/rules.yaml), and
two ingestion servers: one with working downstreams (the pipeline) and one whose downstreams do not
exist, so that IngestPosts is measured into the spool alone. Posts are examples/posts.jsonl,
repeated with fresh ids. The stages alone are called as the forwarder calls them: one request at a
time, Enrich in chunks of at most 256 posts, IndexPosts and EvaluatePosts a forwarder batch at a
time. The pipeline figure runs from the first IngestPosts call until the spool has no pending post.

Run: nice .venv/bin/python bench/ingest_throughput.py [--posts 3000] [--forward-batch 256]
     [--model-batch 64] [--es-url http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from civic.listening.v1 import (
    alerting_pb2,
    alerting_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    post_pb2,
    search_pb2,
    search_pb2_grpc,
)
from services.common.settings import CACHE_DIR, Settings
from services.devstack.elasticsearch_local import LocalElasticsearch, ensure_installed
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from services.devstack.post_files import iter_posts
from services.ingestion.normalize import normalize_post

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "posts.jsonl"
RULES = REPO / "examples" / "rules.yaml"
CLIENT_BATCH = 500
ENRICH_CHUNK = 256
STARTUP_S = 420.0

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    stage: str
    posts: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.posts / self.seconds


def load_posts(count: int, tag: str) -> list[post_pb2.Post]:
    """count example posts with ids no other stage uses, so nothing is a duplicate."""
    examples = [record.post for record in iter_posts(EXAMPLES) if record.post is not None]
    posts = []
    for n, example in zip(range(count), itertools.cycle(examples), strict=False):
        post = post_pb2.Post()
        post.CopyFrom(example)
        post.id = f"{example.id}-{tag}-{n // len(examples)}"
        posts.append(post)
    return posts


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextlib.contextmanager
def elasticsearch(url: str | None, work: Path) -> Iterator[str]:
    if url:
        yield url
        return
    settings = Settings()
    node = LocalElasticsearch(home=ensure_installed(settings.es_version, CACHE_DIR), data_dir=work / "es",
                              http_port=free_port(), transport_port=free_port(), heap="1g",
                              cluster_name="civic-bench-ingest")
    node.start()
    try:
        node.wait_ready(timeout_s=240)
        yield node.url
    finally:
        node.stop()


def wait_enrich_answers(target: str) -> None:
    """Ray Serve's proxy is healthy before the application is deployed: wait for a real answer."""
    deadline = time.monotonic() + STARTUP_S
    with grpc.insecure_channel(target) as chan:
        stub = inference_pb2_grpc.InferenceServiceStub(chan)
        while True:
            try:
                stub.Enrich(inference_pb2.EnrichRequest(posts=[post_pb2.Post(text="ready?")]), timeout=30)
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)


@contextlib.contextmanager
def stack(args: argparse.Namespace, es_url: str, work: Path) -> Iterator[dict[str, str]]:
    """Every process on free ports; yields the targets by name."""
    ports = {name: free_port() for name in ("inference", "search", "alerting", "ingestion", "spool_only")}
    targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    common = {
        "ES_URL": es_url,
        "CIVIC_INDEX_PREFIX": "bench-ingest",
        "CIVIC_RULES_FILE": str(RULES),
        "CIVIC_ALERTING_STATE_PATH": str(work / "alerting.sqlite3"),
        "CIVIC_FORWARD_BATCH_SIZE": str(args.forward_batch),
        "CIVIC_INFERENCE_MAX_BATCH_SIZE": str(args.model_batch),
        "CIVIC_WEBHOOK_PORT": "0",
        **{f"CIVIC_{name.upper()}_PORT": str(ports[name]) for name in ("inference", "search", "alerting")},
        "CIVIC_INFERENCE_HTTP_PORT": str(free_port()),
        "CIVIC_RAY_ADDRESS": "local",
        **{f"CIVIC_{name.upper()}_TARGET": targets[name] for name in ("inference", "search", "alerting")},
    }
    nowhere = {f"CIVIC_{name}_TARGET": f"127.0.0.1:{free_port()}" for name in ("INFERENCE", "SEARCH", "ALERTING")}
    launches = {
        "inference": ("inference", {}),
        "search": ("services.search", {}),
        "alerting": ("services.alerting", {}),
        "ingestion": ("services.ingestion", {"CIVIC_INGESTION_PORT": str(ports["ingestion"]),
                                             "CIVIC_SPOOL_PATH": str(work / "pipeline.sqlite3")}),
        "spool_only": ("services.ingestion", {"CIVIC_INGESTION_PORT": str(ports["spool_only"]),
                                              "CIVIC_SPOOL_PATH": str(work / "spool-only.sqlite3"), **nowhere}),
    }
    processes = {name: spawn([module], {**common, **extra}, work / f"{name}.log")
                 for name, (module, extra) in launches.items()}
    try:
        for name, process in processes.items():
            if name == "inference":
                wait_enrich_answers(targets[name])
            else:
                wait_healthy(targets[name], STARTUP_S, process=process)
        yield targets
    finally:
        for process in processes.values():
            stop_pid(process.pid, timeout_s=60)


def timed(stage: str, posts: int, run: Callable[[], None]) -> Result:
    started = time.perf_counter()
    run()
    result = Result(stage, posts, time.perf_counter() - started)
    print(f"  {stage}: {result.rate:,.1f} posts/s", flush=True)
    return result


def ingest_all(stub: ingestion_pb2_grpc.IngestionServiceStub, posts: Sequence[post_pb2.Post]) -> None:
    for batch in batches(posts, CLIENT_BATCH):
        reply = stub.IngestPosts(ingestion_pb2.IngestPostsRequest(posts=batch), timeout=300)
        assert reply.accepted == len(batch), reply


def wait_drained(stub: ingestion_pb2_grpc.IngestionServiceStub, expected: int) -> None:
    while True:
        stats = stub.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest(), timeout=30)
        if stats.pending == 0 and stats.forwarded >= expected:
            assert stats.forwarded == expected, stats
            return
        time.sleep(0.1)


def run(args: argparse.Namespace, targets: dict[str, str]) -> list[Result]:
    settings = Settings()
    channels = {name: grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
                for name, target in targets.items()}
    spool_only = ingestion_pb2_grpc.IngestionServiceStub(channels["spool_only"])
    ingestion = ingestion_pb2_grpc.IngestionServiceStub(channels["ingestion"])
    inference = inference_pb2_grpc.InferenceServiceStub(channels["inference"])
    search = search_pb2_grpc.SearchServiceStub(channels["search"])
    alerting = alerting_pb2_grpc.AlertingServiceStub(channels["alerting"])

    # Warm-up: the first model passes and index creations are not what is measured.
    warm = [normalize_post(p, settings) for p in load_posts(2 * ENRICH_CHUNK, "warm")]
    for chunk in batches(warm, ENRICH_CHUNK):
        reply = inference.Enrich(inference_pb2.EnrichRequest(posts=chunk), timeout=300)
    search.IndexPosts(search_pb2.IndexPostsRequest(
        posts=[post_pb2.EnrichedPost(post=p, enrichment=e) for p, e in zip(warm, reply.enrichments, strict=False)]
    ), timeout=300)

    results = [timed("IngestPosts (into the spool)", args.posts,
                     lambda: ingest_all(spool_only, load_posts(args.posts, "spool")))]

    normalized = [normalize_post(p, settings) for p in load_posts(args.posts, "alone")]
    enrichments: list[post_pb2.Enrichment] = []

    def enrich() -> None:
        for chunk in batches(normalized, ENRICH_CHUNK):
            enrichments.extend(inference.Enrich(inference_pb2.EnrichRequest(posts=chunk), timeout=300).enrichments)

    results.append(timed("Enrich (inference)", args.posts, enrich))
    enriched = [post_pb2.EnrichedPost(post=p, enrichment=e) for p, e in zip(normalized, enrichments, strict=True)]

    def index() -> None:
        for batch in batches(enriched, args.forward_batch):
            reply = search.IndexPosts(search_pb2.IndexPostsRequest(posts=batch), timeout=300)
            assert reply.indexed == len(batch), reply.errors

    def evaluate() -> None:
        for batch in batches(enriched, args.forward_batch):
            alerting.EvaluatePosts(alerting_pb2.EvaluatePostsRequest(posts=batch), timeout=300)

    results.append(timed("IndexPosts (search)", args.posts, index))
    results.append(timed("EvaluatePosts (alerting)", args.posts, evaluate))

    def pipeline() -> None:
        ingest_all(ingestion, load_posts(args.posts, "pipeline"))
        wait_drained(ingestion, args.posts)

    results.append(timed("whole pipeline, end to end", args.posts, pipeline))
    for chan in channels.values():
        chan.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--forward-batch", type=int, default=256, help="CIVIC_FORWARD_BATCH_SIZE")
    parser.add_argument("--model-batch", type=int, default=64, help="CIVIC_INFERENCE_MAX_BATCH_SIZE")
    parser.add_argument("--es-url", help="an Elasticsearch to use instead of a private node")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="civic-bench-ingest-") as tmp:
        work = Path(tmp)
        with elasticsearch(args.es_url, work) as es_url, stack(args, es_url, work) as targets:
            print(f"{args.posts} posts from {EXAMPLES.name}, forward batch {args.forward_batch}, "
                  f"model batch {args.model_batch}", flush=True)
            results = run(args, targets)
    stages = results[1:4]
    serial = 1 / sum(1 / r.rate for r in stages)
    print("\n| stage | posts | seconds | posts/s |\n|---|---:|---:|---:|")
    for result in results:
        print(f"| {result.stage} | {result.posts:,} | {result.seconds:.1f} | {result.rate:,.1f} |")
    print(f"\nEnrich, IndexPosts and EvaluatePosts one after another (what one forwarder does): "
          f"{serial:,.1f} posts/s")


if __name__ == "__main__":
    main()
