"""Re-tagging speed: how fast a topic change reaches a tenant's stored posts.

Indexes N posts (100,000 by default; 384-dim unit embeddings, texts from a small vocabulary:
bench/search_common.py) into a private local Elasticsearch, defines the demo transit agency's
topics (examples/topics/city-transit.yaml, embedded by the shipped encoder in this process), and runs
the re-tagging job the change starts, as the search service runs it: pages of stored embeddings
read from a point in time, scored against the topics, written back as partial updates. Prints posts
re-tagged per second, then the same for a second change (a topic added), which re-tags everything
again.

    python -m bench.relevance_retagging [--posts 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from elasticsearch import Elasticsearch, helpers

from bench.relevance_data import REPO, Embeddings
from bench.search_common import make_posts
from services.common.relevance.background import Background
from services.common.relevance.definitions import TopicDefinition, load_topics
from services.common.relevance.scoring import Calibration, compile_topics
from services.common.relevance.teaching import teach
from services.common.settings import CACHE_DIR, Settings
from services.devstack.elasticsearch_local import LocalElasticsearch, ensure_installed
from services.devstack.launch import free_port
from services.search.documents import to_document
from services.search.mapping import ensure_tenant_index, install_templates
from services.search.topics.jobs import TaggingJobs
from services.search.topics.store import TopicStore
from services.search.topics.tagger import DefaultTopics, Tagger

TENANT = "bench-agency"
PREFIX = "civic-posts"


def load(es: Elasticsearch, count: int) -> float:
    install_templates(es, PREFIX)
    alias = ensure_tenant_index(es, PREFIX, TENANT)
    started = time.monotonic()
    for start in range(0, count, 5000):
        posts = make_posts(TENANT, min(5000, count - start), seed=start)
        for n, post in enumerate(posts):
            post.post.id = f"post-{start + n}"
        helpers.bulk(es, ({"_index": alias, "_id": d["doc_id"], "_source": d} for d in map(to_document, posts)),
                     chunk_size=1000)
    es.indices.refresh(index=alias)
    return time.monotonic() - started


def change(store: TopicStore, jobs: TaggingJobs, topics: list, reason: str) -> dict:  # type: ignore[type-arg]
    def write(version: int) -> None:
        for topic in topics:
            store.put_topic(TENANT, topic, version, "bench", {"scorer": "description", "relevant_marks": 0,
                                                               "not_relevant_marks": 0, "marks_needed": 20})
    version = store.change(TENANT, write)
    job = jobs.create(TENANT, "retag", reason, version)
    found = store.job(job["id"])
    assert found is not None
    claimed = {**found[0], "state": "running", "owner": jobs.owner}
    return jobs.run(claimed, store.put_job(claimed, found[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="posts per page of the job")
    args = parser.parse_args()
    embed = Embeddings()
    definitions = load_topics(REPO / "examples" / "topics" / "city-transit.yaml")
    background = Background.load()
    topics = compile_topics(definitions, embed)
    extra = compile_topics([TopicDefinition("night_service", "night buses and trams, late-night service",
                                            query="night OR late")], embed)
    first = [topic for topic, _ in teach(topics, background)]
    second = [topic for topic, _ in teach(topics + extra, background)]
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="civic-bench-") as data:
        node = LocalElasticsearch(home=ensure_installed(settings.es_version, CACHE_DIR), data_dir=Path(data),
                                  http_port=free_port(), transport_port=free_port(), heap="1g",
                                  cluster_name="civic-bench")
        node.start()
        try:
            node.wait_ready(timeout_s=240)
            es = Elasticsearch(node.url, request_timeout=120)
            seconds = load(es, args.posts)
            print(f"indexed {args.posts:,} posts in {seconds:.0f} s ({args.posts / seconds:,.0f} posts/s)")
            store = TopicStore(es, "civic-topics")
            calibration = Calibration.load()
            tagger = Tagger(store, DefaultTopics(load_topics(), embed, background, calibration), background,
                            calibration, cache_s=0.0)
            jobs = TaggingJobs(es, store, tagger, PREFIX, batch_size=args.batch)
            for label, current in (("5 topics defined", first), ("a 6th topic added (with a query)", second)):
                started = time.monotonic()
                job = change(store, jobs, current, label)
                wall = time.monotonic() - started
                print(f"{label}: {job['state']}, {job['processed']:,} posts re-tagged in {wall:.1f} s = "
                      f"{job['processed'] / wall:,.0f} posts/s ({job['changed']:,} changed their topics)")
            es.close()
        finally:
            node.stop()


if __name__ == "__main__":
    main()
