"""The demo's agency topics: each agency defines its own (examples/topics/<tenant>.yaml) before its
posts arrive, the demo shows how many of each agency's posts they tag, then an analyst reviews a
sample of each topic's posts (the generator's record of what each post is about stands in for the
analyst: examples/posts.topics.jsonl) and the topics' classifiers take over."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from civic.listening.v1 import search_pb2, search_pb2_grpc, topics_pb2, topics_pb2_grpc
from services.common.relevance.definitions import load_topics

JOB_WAIT_S = 600.0
BY = "civic demo"
# Posts an analyst marks per topic on each side: enough for the classifier (10) and for 5-fold
# cross-validation that means something.
REVIEWED_PER_SIDE = 12


def define(client: topics_pb2_grpc.TopicServiceStub, folder: Path, tenants: Sequence[str], timeout: float) -> int:
    """Puts every agency's topics from folder/<tenant>.yaml; returns how many topics were put."""
    count = 0
    for tenant in tenants:
        path = folder / f"{tenant}.yaml"
        if not path.exists():
            continue
        for definition in load_topics(path):
            client.PutTopic(topics_pb2.PutTopicRequest(tenant=tenant, by=BY, topic=topics_pb2.Topic(
                name=definition.name, description=definition.description, examples=definition.examples,
                counter_examples=definition.counter_examples, query=definition.query,
                threshold=definition.threshold)), timeout=timeout)
            count += 1
    return count


def wait_retagged(client: topics_pb2_grpc.TopicServiceStub, tenants: Sequence[str], timeout: float) -> None:
    """Until no tagging job of these agencies is queued or running."""
    deadline = time.monotonic() + JOB_WAIT_S
    busy = {topics_pb2.TAGGING_JOB_STATE_QUEUED, topics_pb2.TAGGING_JOB_STATE_RUNNING}
    while time.monotonic() < deadline:
        jobs = [job for tenant in tenants for job in client.ListTaggingJobs(
            topics_pb2.ListTaggingJobsRequest(tenant=tenant, limit=5), timeout=timeout).jobs]
        if not any(job.state in busy for job in jobs):
            return
        time.sleep(0.5)
    raise TimeoutError(f"re-tagging still running after {JOB_WAIT_S:.0f} s (`civic topics jobs`)")


def share_table(console: Console, search: search_pb2_grpc.SearchServiceStub,
                client: topics_pb2_grpc.TopicServiceStub, tenants: Sequence[str], timeout: float) -> None:
    """Per agency: its topics, the share of its posts tagged with at least one, and the top topics."""
    table = Table(title="Posts tagged with the agency's own topics")
    for column in ("agency", "topic set", "posts", "with a topic", "most frequent topics"):
        table.add_column(column, justify="right" if column in ("posts", "with a topic") else "left")
    for tenant in tenants:
        topic_set = client.ListTopics(topics_pb2.ListTopicsRequest(tenant=tenant), timeout=timeout).topic_set
        names = [topic.name for topic in topic_set.topics]
        total = search.Count(search_pb2.CountRequest(tenant=tenant), timeout=timeout).count
        tagged = search.Count(search_pb2.CountRequest(
            tenant=tenant, filters=search_pb2.SearchFilters(topics=names)), timeout=timeout).count
        top = search.Aggregate(search_pb2.AggregateRequest(
            tenant=tenant, dimension=search_pb2.AGGREGATE_DIMENSION_TOPIC, size=3), timeout=timeout)
        label = "defaults" if topic_set.defaults else f"{len(names)} topics, v{topic_set.version}"
        table.add_row(tenant, label, str(total), f"{tagged} ({100 * tagged / max(total, 1):.0f}%)",
                      ", ".join(f"{b.key} {b.count}" for b in top.buckets))
    console.print(table)


def review(client: topics_pb2_grpc.TopicServiceStub, truth_file: Path, channels: Mapping[str, str],
           tenants: Sequence[str], timeout: float) -> int:
    """Marks REVIEWED_PER_SIDE posts about each topic and as many about other things, per agency, as
    the truth file says (channels: post id -> channel); returns the marks sent (0 without the file)."""
    if not truth_file.exists():
        return 0
    rows = [json.loads(line) for line in truth_file.read_text(encoding="utf-8").splitlines()]
    sent = 0
    for tenant in tenants:
        topic_set = client.ListTopics(topics_pb2.ListTopicsRequest(tenant=tenant), timeout=timeout).topic_set
        if topic_set.defaults:
            continue
        own = [row for row in rows if row["tenant"] == tenant]
        marks = []
        for topic in topic_set.topics:
            about = [row["id"] for row in own if topic.name in row["topics"]][:REVIEWED_PER_SIDE]
            other = [row["id"] for row in own if topic.name not in row["topics"]][:REVIEWED_PER_SIDE]
            marks += [topics_pb2.PostMark(topic=topic.name, channel=channels[post_id], post_id=post_id,
                                          relevant=post_id in about) for post_id in about + other]
        client.MarkPosts(topics_pb2.MarkPostsRequest(tenant=tenant, by=BY, marks=marks), timeout=timeout)
        sent += len(marks)
    return sent


def quality_table(console: Console, client: topics_pb2_grpc.TopicServiceStub, tenants: Sequence[str],
                  timeout: float) -> None:
    """Each topic's classifier, measured on the marks it was not fitted on (cross-validation)."""
    table = Table(title="Topic classifiers, cross-validated on the analyst's marks")
    for column in ("agency", "topic", "marks", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column in ("agency", "topic") else "right")
    for tenant in tenants:
        for topic in client.ListTopics(topics_pb2.ListTopicsRequest(tenant=tenant), timeout=timeout).topic_set.topics:
            quality = topic.quality
            if quality.scorer != topics_pb2.TOPIC_SCORER_CLASSIFIER:
                continue
            table.add_row(tenant, topic.name, f"{quality.relevant_marks}+/{quality.not_relevant_marks}-",
                          f"{quality.precision:.2f}", f"{quality.recall:.2f}", f"{quality.f1:.2f}")
    console.print(table)
