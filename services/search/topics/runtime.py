"""The topic machinery of one search process, assembled from settings: store, tagger, jobs, domain."""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch

from services.common.relevance.background import Background
from services.common.relevance.definitions import load_topics
from services.common.relevance.scoring import Calibration
from services.common.settings import Settings
from services.search.embedder import InferenceEmbedder
from services.search.topics.jobs import TaggingJobs
from services.search.topics.service import Topics
from services.search.topics.store import TopicStore
from services.search.topics.tagger import DefaultTopics, Tagger


@dataclass(frozen=True)
class TopicRuntime:
    tagger: Tagger
    jobs: TaggingJobs
    topics: Topics

    def stop(self) -> None:
        self.jobs.stop()


def start_topics(settings: Settings, es: Elasticsearch, inference: InferenceEmbedder) -> TopicRuntime:
    """Everything the TopicService and index-time tagging need, with the job worker running."""
    store = TopicStore(es, settings.topics_index_prefix)
    background, calibration = Background.load(), Calibration.load()
    defaults = DefaultTopics(load_topics(settings.topics_file), inference.passages, background, calibration)
    tagger = Tagger(store, defaults, background, calibration, settings.topics_cache_s)
    jobs = TaggingJobs(es, store, tagger, settings.index_prefix, batch_size=settings.tagging_batch_size,
                       enrich=inference.enrich).start()
    topics = Topics(es, settings.index_prefix, store, tagger, jobs, inference.passages, inference.enrich)
    return TopicRuntime(tagger, jobs, topics)
