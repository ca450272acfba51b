"""Tags posts with their tenant's topics from the embeddings they already carry.

Scoring at index time keeps the models stateless: inference embeds a post once, and whatever a
tenant's topics are (or become) is decided here from that embedding. Each replica keeps every
tenant's scorer for `cache_s` seconds before checking the set version again (one document read), so
a change reaches all replicas within that time; posts a replica tagged with an older version in the
meantime are found by their version and re-tagged by the job the change started (jobs.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from civic.listening.v1 import post_pb2, search_pb2
from services.common import boolean_query
from services.common.relevance.background import Background
from services.common.relevance.definitions import TopicDefinition
from services.common.relevance.scoring import Calibration, CompiledTopic, Embed, Tagging, TopicSetScorer, compile_topics
from services.search.topics.store import TopicStore


@dataclass(frozen=True)
class TenantTopics:
    """What tags a tenant's posts now. scorer is None while the tenant uses the defaults untouched:
    then the inference service's default-topic relevance stands as it came."""

    version: int
    scorer: TopicSetScorer | None
    defaults: bool

    @property
    def relevance_version(self) -> str:
        return f"tenant-topics@v{self.version}" + ("-defaults" if self.defaults else "")


class DefaultTopics:
    """The shipped (or configured) default set, compiled on first use through the encoder."""

    def __init__(self, definitions: Sequence[TopicDefinition], embed: Embed, background: Background,
                 calibration: Calibration) -> None:
        self.definitions = list(definitions)
        self._embed = embed
        self._background, self._calibration = background, calibration
        self._compiled: list[CompiledTopic] | None = None
        self._lock = threading.Lock()

    def compiled(self) -> list[CompiledTopic]:
        with self._lock:
            if self._compiled is None:
                self._compiled = compile_topics(self.definitions, self._embed)
            return self._compiled

    def scorer(self) -> TopicSetScorer:
        return TopicSetScorer(self.compiled(), self._background, self._calibration)


class Tagger:
    def __init__(self, store: TopicStore, defaults: DefaultTopics, background: Background, calibration: Calibration,
                 cache_s: float) -> None:
        self.store = store
        self.defaults = defaults
        self.background, self.calibration = background, calibration
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, TenantTopics]] = {}
        self._lock = threading.Lock()

    def current(self, tenant: str, fresh: bool = False) -> TenantTopics:
        with self._lock:
            cached = self._cache.get(tenant)
        if cached is not None and not fresh and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        version = self.store.set_version(tenant)
        topics = cached[1] if cached is not None and cached[1].version == version else self._load(tenant, version)
        with self._lock:
            self._cache[tenant] = (time.monotonic(), topics)
        return topics

    def _load(self, tenant: str, version: int) -> TenantTopics:
        if version == 0:
            return TenantTopics(0, None, defaults=True)
        compiled = [topic for topic, _ in self.store.topics(tenant)]
        if not compiled:  # every topic deleted: back to the defaults, under this version
            return TenantTopics(version, self.defaults.scorer(), defaults=True)
        return TenantTopics(version, TopicSetScorer(compiled, self.background, self.calibration), defaults=False)

    def tag_posts(self, posts: Sequence[post_pb2.EnrichedPost]) -> list[search_pb2.PostTopics]:
        """Sets each post's relevance, topic, topics and version (in place); what each got, in order."""
        by_tenant: dict[str, list[int]] = {}
        for position, enriched in enumerate(posts):
            by_tenant.setdefault(enriched.post.tenant, []).append(position)
        for tenant, positions in by_tenant.items():
            topics = self.current(tenant)
            scorer = topics.scorer
            scored = [i for i in positions if scorer is not None and posts[i].enrichment.embedding]
            if scored and scorer is not None:
                vectors = np.array([list(posts[i].enrichment.embedding) for i in scored], dtype=np.float32)
                documents = [post_document(posts[i].post) for i in scored]
                taggings = dict(zip(scored, scorer.tag(vectors, documents), strict=True))
                for i in scored:
                    tagging = taggings[i] if posts[i].post.text.strip() else scorer.untagged()
                    apply_tagging(posts[i].enrichment, tagging)
            for i in positions:
                posts[i].enrichment.topic_set_version = topics.version
                if scorer is not None and posts[i].enrichment.embedding:
                    posts[i].enrichment.model_versions.relevance = topics.relevance_version
        return [post_topics(enriched) for enriched in posts]


def apply_tagging(enrichment: post_pb2.Enrichment, tagging: Tagging) -> None:
    del enrichment.relevance[:]
    enrichment.relevance.extend(post_pb2.TopicRelevance(topic=name, score=score) for name, score in tagging.relevance)
    enrichment.topic = tagging.topic
    del enrichment.topics[:]
    enrichment.topics.extend(tagging.topics)


def post_topics(enriched: post_pb2.EnrichedPost) -> search_pb2.PostTopics:
    enrichment = enriched.enrichment
    return search_pb2.PostTopics(
        id=enriched.post.id, relevance=enrichment.relevance, topic=enrichment.topic, topics=enrichment.topics,
        topic_set_version=enrichment.topic_set_version, relevance_version=enrichment.model_versions.relevance,
    )


def post_document(post: post_pb2.Post) -> boolean_query.Document:
    """The post as a topic's query sees it: its text and the fields a query may name."""
    return boolean_query.Document.of(post.text, {
        "channel": [post.channel], "source": [post.source], "language": [post.language],
        "author": [post.author.name], "author.name": [post.author.name], "author.id": [post.author.id],
    })


def source_document(source: Mapping[str, Any]) -> boolean_query.Document:
    """post_document of a stored post."""
    author = source.get("author", {})
    return boolean_query.Document.of(source.get("text", ""), {
        "channel": [source.get("channel", "")], "source": [source.get("source", "")],
        "language": [source.get("language", "")], "author": [author.get("name", "")],
        "author.name": [author.get("name", "")], "author.id": [author.get("id", "")],
    })
