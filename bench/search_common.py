"""What both search benchmarks share: a private local Elasticsearch, a search server on it, and a
deterministic set of enriched posts (texts from a small vocabulary, 384-dim unit embeddings).

The search server runs as its own process (`python -m services.search`), as it is deployed, so the
benchmark's client and the server do not share one interpreter and its lock."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import post_pb2
from services.common.grpc_server import channel
from services.common.settings import CACHE_DIR, Settings
from services.devstack.elasticsearch_local import LocalElasticsearch, ensure_installed
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy

WORDS = [
    "bus", "route", "late", "delay", "metro", "station", "pothole", "street", "light", "park", "passport",
    "office", "tax", "water", "bill", "outage", "school", "road", "closed", "snow", "plough", "garbage",
    "collection", "noise", "permit", "library", "clinic", "queue",
]
CHANNELS = ("mastodon", "reddit", "rss", "open311", "bluesky")
LANGUAGES = ("en", "en", "en", "fr", "es", "de")
SENTIMENTS = (post_pb2.SENTIMENT_LABEL_NEGATIVE, post_pb2.SENTIMENT_LABEL_NEUTRAL, post_pb2.SENTIMENT_LABEL_POSITIVE)


def make_posts(tenant: str, count: int, seed: int = 7) -> list[post_pb2.EnrichedPost]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    posts = []
    for n in range(count):
        words = rng.choice(WORDS, size=int(rng.integers(8, 30)))
        created = Timestamp()
        created.FromSeconds(1_763_000_000 + int(rng.integers(0, 30 * 86400)))
        sentiment = SENTIMENTS[int(rng.integers(0, 3))]
        posts.append(post_pb2.EnrichedPost(
            post=post_pb2.Post(
                id=f"post-{n}", tenant=tenant, channel=CHANNELS[n % len(CHANNELS)], source=f"src-{n % 13}",
                author=post_pb2.Author(id=f"acct-{n % 997}", name=f"Resident {n % 997}",
                                       follower_count=int(rng.integers(0, 5000))),
                text=" ".join(words).capitalize() + ".", language=LANGUAGES[n % len(LANGUAGES)],
                language_confidence=0.9, created_at=created,
                engagement=post_pb2.Engagement(likes=int(rng.integers(0, 50))),
            ),
            enrichment=post_pb2.Enrichment(
                sentiment=sentiment, topic=str(rng.choice(["transit", "roads", "services", ""])),
                relevance=[post_pb2.TopicRelevance(topic="transit", score=float(rng.random()))],
                embedding=vectors[n].tolist(),
            ),
        ))
    return posts


@contextlib.contextmanager
def local_stack(heap: str = "1g") -> Iterator[tuple[Settings, grpc.Channel]]:
    """A fresh Elasticsearch node and a search server process on it, both gone afterwards; yields
    the settings for the node and a channel to the server."""
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="civic-bench-") as data:
        node = LocalElasticsearch(home=ensure_installed(settings.es_version, CACHE_DIR), data_dir=Path(data),
                                  http_port=free_port(), transport_port=free_port(), heap=heap,
                                  cluster_name="civic-bench")
        node.start()
        try:
            node.wait_ready(timeout_s=240)
            settings = Settings(es_url=node.url)
            port = free_port()
            server = spawn(["services.search"], {"ES_URL": node.url, "CIVIC_SEARCH_PORT": str(port)},
                           Path(data) / "search.log")
            try:
                wait_healthy(f"127.0.0.1:{port}", 60, process=server)
                with channel(f"127.0.0.1:{port}", settings) as chan:
                    yield settings, chan
            finally:
                stop_pid(server.pid)
        finally:
            node.stop()
