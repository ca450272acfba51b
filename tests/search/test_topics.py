"""Tenants' own topics over gRPC against the real stack: Elasticsearch, the real inference service, a
search server with the TopicService. Definitions, index-time tagging, re-tagging of history, marks
that train a classifier, deletion, defaults, re-enrichment, and what bad requests get."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from civic.listening.v1 import (
    inference_pb2,
    inference_pb2_grpc,
    post_pb2,
    search_pb2,
    search_pb2_grpc,
    topics_pb2,
    topics_pb2_grpc,
)
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.client import connect
from services.search.embedder import InferenceEmbedder
from services.search.indexing import Indexer
from services.search.server import build_server
from services.search.service import Searcher
from services.search.topics.jobs import TaggingJobs
from services.search.topics.runtime import start_topics

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FARES = "fares and tickets: fares, ticket prices, ticket machines and passes"
DELAYS = "delays and cancellations of buses, trams and trains"
DONE = topics_pb2.TAGGING_JOB_STATE_DONE


@dataclass
class Stack:
    search: search_pb2_grpc.SearchServiceStub
    topics: topics_pb2_grpc.TopicServiceStub
    inference: inference_pb2_grpc.InferenceServiceStub
    jobs: TaggingJobs


@pytest.fixture(scope="module")
def stack(elasticsearch_url: str, inference_target: str) -> Iterator[Stack]:
    settings = Settings(es_url=elasticsearch_url, index_prefix="civic-posts", inference_target=inference_target,
                        topics_index_prefix=f"civic-topics-{uuid.uuid4().hex[:6]}", topics_cache_s=0.0)
    es = connect(settings)
    runtime = start_topics(settings, es, InferenceEmbedder(settings))
    server = build_server(settings, Indexer(es, "civic-posts", refresh=True, tagger=runtime.tagger),
                          Searcher(es, "civic-posts"), port=0, topics=runtime.topics).start()
    with channel(f"127.0.0.1:{server.port}", settings) as chan, channel(inference_target, settings) as model:
        yield Stack(search_pb2_grpc.SearchServiceStub(chan), topics_pb2_grpc.TopicServiceStub(chan),
                    inference_pb2_grpc.InferenceServiceStub(model), runtime.jobs)
    server.stop()
    runtime.stop()
    es.close()


def demo_posts(topic: str, count: int) -> list[str]:
    """Texts of the example week's city-transit posts about this one topic only (the generator's truth)."""
    truth = [json.loads(line) for line in (EXAMPLES / "posts.topics.jsonl").read_text(encoding="utf-8").splitlines()]
    wanted = {row["id"] for row in truth if row["tenant"] == "city-transit" and row["topics"] == [topic]}
    texts = [json.loads(line)["text"] for line in (EXAMPLES / "posts.jsonl").read_text(encoding="utf-8").splitlines()
             if json.loads(line)["id"] in wanted]
    return texts[:count]


def index(stack: Stack, tenant: str, texts: dict[str, str], **versions: str) -> search_pb2.IndexPostsResponse:
    """Enriches the texts with the real model and indexes them as posts of this tenant."""
    posts = [post_pb2.Post(id=post_id, tenant=tenant, channel="mastodon", text=text, language="en")
             for post_id, text in texts.items()]
    for post in posts:
        post.created_at.FromSeconds(1_700_000_000)
    enrichments = stack.inference.Enrich(inference_pb2.EnrichRequest(posts=posts), timeout=120).enrichments
    enriched = [post_pb2.EnrichedPost(post=p, enrichment=e) for p, e in zip(posts, enrichments, strict=True)]
    for item in enriched:
        for part, value in versions.items():
            setattr(item.enrichment.model_versions, part, value)
    reply = stack.search.IndexPosts(search_pb2.IndexPostsRequest(posts=enriched), timeout=60)
    assert reply.indexed == len(posts), reply.errors
    return reply


def wait_job(stack: Stack, tenant: str, job: topics_pb2.TaggingJob, timeout_s: float = 120) -> topics_pb2.TaggingJob:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = stack.topics.GetTaggingJob(topics_pb2.GetTaggingJobRequest(tenant=tenant, id=job.id)).job
        if current.state in (DONE, topics_pb2.TAGGING_JOB_STATE_SUPERSEDED, topics_pb2.TAGGING_JOB_STATE_FAILED):
            return current
        time.sleep(0.2)
    raise AssertionError(f"job {job.id} did not finish: {current}")


def put(stack: Stack, tenant: str, name: str, description: str, **fields: object) -> topics_pb2.PutTopicResponse:
    topic = topics_pb2.Topic(name=name, description=description, **fields)  # type: ignore[arg-type]
    return stack.topics.PutTopic(topics_pb2.PutTopicRequest(tenant=tenant, topic=topic, by="test analyst"))


def stored(stack: Stack, tenant: str, post_id: str) -> post_pb2.Enrichment:
    request = search_pb2.GetPostRequest(tenant=tenant, channel="mastodon", id=post_id)
    return stack.search.GetPost(request).post.enrichment


def test_a_new_topic_retags_history_and_tags_new_posts(stack: Stack, tenant: str) -> None:
    fares = ["Ticket prices went up again and the fare machine rejects my card.",
             "How much is a weekly pass? The ticket office says the fares changed.",
             "The contactless fare cap is great, my tickets cost less now."]
    index(stack, tenant, {f"old-{i}": text for i, text in enumerate(fares)} | {"small-talk": "Happy birthday, mum!"})
    before = stored(stack, tenant, "old-0")
    assert before.topic_set_version == 0  # the defaults, as inference tagged them

    reply = put(stack, tenant, "fares", FARES)
    assert reply.topic.version == reply.job.topic_set_version >= 1
    assert reply.topic.updated_by == "test analyst"
    assert reply.topic.quality.scorer == topics_pb2.TOPIC_SCORER_DESCRIPTION
    assert reply.topic.quality.marks_needed == 20
    job = wait_job(stack, tenant, reply.job)
    assert job.state == DONE and job.processed == job.total == 4, job
    for i in range(3):
        retagged = stored(stack, tenant, f"old-{i}")
        assert retagged.topic_set_version == reply.topic.version
        assert [r.topic for r in retagged.relevance] == ["fares"]
        assert retagged.model_versions.relevance == f"tenant-topics@v{reply.topic.version}"
    assert "fares" in stored(stack, tenant, "old-0").topics
    assert list(stored(stack, tenant, "small-talk").topics) == []

    new = index(stack, tenant, {"new-0": fares[0] + " Again!"})
    (tagged,) = new.tagged
    assert tagged.id == "new-0" and tagged.topic_set_version == reply.topic.version
    assert list(tagged.topics) == ["fares"] and tagged.relevance[0].score >= 0.5
    found = stack.search.Search(search_pb2.SearchRequest(tenant=tenant, filters=search_pb2.SearchFilters(
        topics=["fares"])))
    assert {hit.post.post.id for hit in found.hits} >= {"old-0", "new-0"}
    listed = stack.topics.ListTaggingJobs(topics_pb2.ListTaggingJobsRequest(tenant=tenant)).jobs
    assert [j.id for j in listed] == [reply.job.id]


def test_a_topic_query_must_match_and_topics_are_multi_label(stack: Stack, tenant: str) -> None:
    texts = {"both": "The ticket machine ate my card and then the bus was cancelled.",
             "machine": "The ticket machine at Old Market rejects every card.",
             "late": "Tram T1 is delayed again, 20 minutes late."}
    index(stack, tenant, texts)
    # Low thresholds: the queries decide, so the test says what the gate does whatever the scores.
    put(stack, tenant, "delays", DELAYS, query="cancelled OR delayed OR late", threshold=0.01)
    job = put(stack, tenant, "fares", FARES, query='"ticket machine"', threshold=0.01).job
    assert wait_job(stack, tenant, job).state == DONE
    assert list(stored(stack, tenant, "late").topics) == ["delays"]
    assert list(stored(stack, tenant, "machine").topics) == ["fares"]
    both = stored(stack, tenant, "both")
    assert set(both.topics) == {"fares", "delays"} and both.topic == both.topics[0]
    scores = {r.topic: r.score for r in stored(stack, tenant, "late").relevance}
    assert scores["fares"] == 0.0 and scores["delays"] > 0.0 and set(scores) == {"fares", "delays"}


def test_marks_train_a_classifier_with_measured_quality(stack: Stack, tenant: str) -> None:
    about = demo_posts("fares_and_tickets", 12)
    other = demo_posts("service_reliability", 12)
    index(stack, tenant, {f"fare-{i}": t for i, t in enumerate(about)} | {f"late-{i}": t for i, t in enumerate(other)})
    wait_job(stack, tenant, put(stack, tenant, "fares", FARES).job)
    quality = None
    for i in range(12):
        for prefix, relevant in (("fare", True), ("late", False)):
            reply = stack.topics.MarkPost(topics_pb2.MarkPostRequest(
                tenant=tenant, topic="fares", channel="mastodon", post_id=f"{prefix}-{i}", relevant=relevant,
                by="analyst@agency"))
            quality = reply.quality
            # From the first "relevant" mark on, a classifier is taught (every mark refits it and starts a
            # re-tagging job); it is measured once each side has 10 marks.
            assert reply.HasField("job")
            if i < 9:
                assert quality.scorer == topics_pb2.TOPIC_SCORER_EXAMPLES and quality.precision == 0.0
                assert quality.relevant_marks == i + 1
                assert quality.marks_needed == 20 - quality.relevant_marks - quality.not_relevant_marks
    assert quality is not None and quality.scorer == topics_pb2.TOPIC_SCORER_CLASSIFIER
    assert (quality.relevant_marks, quality.not_relevant_marks, quality.marks_needed) == (12, 12, 0)
    assert quality.folds == 5 and 0.0 < quality.precision <= 1.0 and 0.0 < quality.recall <= 1.0
    assert reply.HasField("job")
    assert wait_job(stack, tenant, reply.job).state == DONE
    tagged_fares = sum("fares" in stored(stack, tenant, f"fare-{i}").topics for i in range(12))
    tagged_late = sum("fares" in stored(stack, tenant, f"late-{i}").topics for i in range(12))
    assert tagged_fares >= 10 and tagged_late <= 2, (tagged_fares, tagged_late)
    topic = stack.topics.GetTopic(topics_pb2.GetTopicRequest(tenant=tenant, name="fares")).topic
    assert topic.quality.scorer == topics_pb2.TOPIC_SCORER_CLASSIFIER
    marks = stack.topics.ListMarks(topics_pb2.ListMarksRequest(tenant=tenant, topic="fares", limit=5)).marks
    assert len(marks) == 5 and marks[0].post_id == "late-11" and marks[0].by == "analyst@agency"
    assert not marks[0].relevant and marks[0].text


def test_deleting_the_last_topic_returns_history_to_the_defaults(stack: Stack, tenant: str) -> None:
    index(stack, tenant, {"p": demo_posts("fares_and_tickets", 1)[0]})
    wait_job(stack, tenant, put(stack, tenant, "fares", FARES).job)
    reply = stack.topics.DeleteTopic(topics_pb2.DeleteTopicRequest(tenant=tenant, name="fares", by="admin"))
    assert wait_job(stack, tenant, reply.job).state == DONE
    after = stored(stack, tenant, "p")
    assert after.topic_set_version == reply.job.topic_set_version
    assert "fares" not in {r.topic for r in after.relevance} and "public_transit" in {r.topic for r in after.relevance}
    listed = stack.topics.ListTopics(topics_pb2.ListTopicsRequest(tenant=tenant)).topic_set
    assert listed.defaults and "public_transit" in {t.name for t in listed.topics}
    with pytest.raises(grpc.RpcError) as missing:
        stack.topics.DeleteTopic(topics_pb2.DeleteTopicRequest(tenant=tenant, name="fares", by="admin"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_copying_the_defaults_makes_them_the_tenants_own(stack: Stack, tenant: str) -> None:
    reply = stack.topics.CopyDefaultTopics(topics_pb2.CopyDefaultTopicsRequest(
        tenant=tenant, names=["public_transit", "passports"], by="admin"))
    assert not reply.topic_set.defaults
    assert [t.name for t in reply.topic_set.topics] == ["passports", "public_transit"]
    again = stack.topics.CopyDefaultTopics(topics_pb2.CopyDefaultTopicsRequest(tenant=tenant, by="admin"))
    assert len(again.topic_set.topics) == 10 and again.topic_set.version == reply.topic_set.version + 1


def test_reenrichment_is_estimated_then_brings_old_posts_to_the_current_models(stack: Stack, tenant: str) -> None:
    index(stack, tenant, {"current": "The 12 bus was on time."})
    index(stack, tenant, {"old": "The ticket machine is broken again."}, encoder="old-encoder@0", sentiment="old@0")
    estimate = stack.topics.ReenrichPosts(topics_pb2.ReenrichPostsRequest(tenant=tenant))
    assert (estimate.outdated_posts, estimate.total_posts) == (1, 2)
    assert estimate.posts_per_second > 0 and estimate.estimated_seconds > 0 and not estimate.HasField("job")
    started = stack.topics.ReenrichPosts(topics_pb2.ReenrichPostsRequest(tenant=tenant, start=True))
    job = wait_job(stack, tenant, started.job)
    assert job.state == DONE and job.kind == topics_pb2.TAGGING_JOB_KIND_REENRICH and job.processed == 1
    refreshed = stored(stack, tenant, "old")
    assert refreshed.model_versions.encoder == stored(stack, tenant, "current").model_versions.encoder
    assert stack.topics.ReenrichPosts(topics_pb2.ReenrichPostsRequest(tenant=tenant)).outdated_posts == 0


def test_a_post_deleted_while_it_is_being_reenriched_stays_deleted(
    stack: Stack, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RemovePosts lands between the job's read of a page and its write: the write must not bring the
    post back (the other post of the page is still brought to the current models)."""
    index(stack, tenant, {"kept": "The 12 bus was late.", "deleted": "My name is on this post, remove it."},
          encoder="old-encoder@0")
    enrich = stack.jobs.enrich
    assert enrich is not None

    def enrich_while_the_post_is_deleted(posts: list[post_pb2.Post]) -> list[post_pb2.Enrichment]:
        gone = search_pb2.RemovePostsRequest(tenant=tenant, posts=[post_pb2.PostRef(channel="mastodon", id="deleted")])
        assert stack.search.RemovePosts(gone, timeout=60).removed == 1
        return enrich(posts)

    monkeypatch.setattr(stack.jobs, "enrich", enrich_while_the_post_is_deleted)
    started = stack.topics.ReenrichPosts(topics_pb2.ReenrichPostsRequest(tenant=tenant, start=True))
    job = wait_job(stack, tenant, started.job)
    assert job.state == DONE, job.error
    with pytest.raises(grpc.RpcError) as missing:
        stack.search.GetPost(search_pb2.GetPostRequest(tenant=tenant, channel="mastodon", id="deleted"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert stored(stack, tenant, "kept").model_versions.encoder != "old-encoder@0"


@pytest.mark.parametrize(
    ("topic", "by", "field"),
    [
        (topics_pb2.Topic(name="Fares!", description="fares"), "a", "topic.name"),
        (topics_pb2.Topic(name="fares", description="  "), "a", "topic.description"),
        (topics_pb2.Topic(name="fares", description="x" * 501), "a", "topic.description"),
        (topics_pb2.Topic(name="fares", description="fares", threshold=1.5), "a", "topic.threshold"),
        (topics_pb2.Topic(name="fares", description="fares", query="(ticket"), "a", "topic.query"),
        (topics_pb2.Topic(name="fares", description="fares", examples=[""]), "a", "topic.examples[0]"),
        (topics_pb2.Topic(name="fares", description="fares", examples=["e"] * 51), "a", "topic.examples"),
        (topics_pb2.Topic(name="fares", description="fares"), "", "by"),
    ],
)
def test_bad_definitions_name_the_field(stack: Stack, tenant: str, topic: topics_pb2.Topic, by: str,
                                        field: str) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stack.topics.PutTopic(topics_pb2.PutTopicRequest(tenant=tenant, topic=topic, by=by))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:"), error.value.details()


def test_bad_marks_and_lookups_are_refused(stack: Stack, tenant: str) -> None:
    def refused(call: object, request: object) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as error:
            call(request)  # type: ignore[operator]
        return error.value

    mark = topics_pb2.MarkPostRequest(tenant=tenant, topic="fares", channel="mastodon", post_id="p", by="a")
    error = refused(stack.topics.MarkPost, mark)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "copy them first" in error.details()
    put(stack, tenant, "fares", FARES)
    assert refused(stack.topics.MarkPost, mark).code() == grpc.StatusCode.NOT_FOUND  # no such post
    assert refused(stack.topics.GetTopic, topics_pb2.GetTopicRequest(tenant=tenant, name="nope")).code() == \
        grpc.StatusCode.NOT_FOUND
    assert refused(stack.topics.ListTopics, topics_pb2.ListTopicsRequest(tenant="Bad Tenant")).details().startswith(
        "tenant:")
    assert refused(stack.topics.GetTaggingJob, topics_pb2.GetTaggingJobRequest(tenant=tenant, id="x")).code() == \
        grpc.StatusCode.NOT_FOUND
    assert refused(stack.topics.CopyDefaultTopics, topics_pb2.CopyDefaultTopicsRequest(
        tenant=tenant, names=["nope"], by="a")).details().startswith("names:")


def test_a_batch_of_marks_refits_once_and_names_a_bad_mark(stack: Stack, tenant: str) -> None:
    about = demo_posts("fares_and_tickets", 10)
    other = demo_posts("stations_and_accessibility", 10)
    index(stack, tenant, {f"fare-{i}": t for i, t in enumerate(about)} | {f"lift-{i}": t for i, t in enumerate(other)})
    put(stack, tenant, "fares", FARES)
    wait_job(stack, tenant, put(stack, tenant, "stations", "stations, elevators and step-free access").job)
    marks = [topics_pb2.PostMark(topic="fares", channel="mastodon", post_id=f"{prefix}-{i}", relevant=prefix == "fare")
             for i in range(10) for prefix in ("fare", "lift")]
    bad = topics_pb2.MarkPostsRequest(tenant=tenant, by="reviewer", marks=[*marks[:3], topics_pb2.PostMark(
        topic="fares", channel="mastodon", post_id="missing", relevant=True)])
    with pytest.raises(grpc.RpcError) as error:
        stack.topics.MarkPosts(bad)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND and error.value.details().startswith("marks[3].post_id")
    assert stack.topics.ListMarks(topics_pb2.ListMarksRequest(tenant=tenant, topic="fares")).marks == []

    reply = stack.topics.MarkPosts(topics_pb2.MarkPostsRequest(tenant=tenant, by="reviewer", marks=marks))
    assert set(reply.quality) == {"fares"} and reply.quality["fares"].scorer == topics_pb2.TOPIC_SCORER_CLASSIFIER
    assert "fares" in reply.job.reason and wait_job(stack, tenant, reply.job).state == DONE
    history = stack.topics.ListTaggingJobs(topics_pb2.ListTaggingJobsRequest(tenant=tenant)).jobs
    assert len(history) == 3  # two puts and one refit for twenty marks
    stations = stack.topics.GetTopic(topics_pb2.GetTopicRequest(tenant=tenant, name="stations")).topic
    assert stations.quality.scorer == topics_pb2.TOPIC_SCORER_DESCRIPTION
