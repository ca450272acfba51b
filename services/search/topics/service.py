"""The TopicService's domain: validate, change a tenant's topics, and start the job that follows.

Every change takes a new topic set version, is recorded in the topics' history with who made it,
and starts a re-tagging job, so the tenant's history always ends up tagged by the definitions in
force. A mark refits the topic's classifier (examples count as "relevant" marks, counter-examples as
"not relevant") and, once the classifier is in use, every refit is such a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch

from civic.listening.v1 import post_pb2, topics_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.relevance.classifier import Quality, fit_classifier, marks_needed
from services.common.relevance.definitions import MAX_TOPICS_PER_TENANT, TopicDefinition
from services.common.relevance.scoring import CompiledTopic, Embed, compile_topic
from services.common.validation import require_channel, require_tenant
from services.search.documents import document_id
from services.search.mapping import alias_name
from services.search.topics.jobs import Enrich, TaggingJobs, outdated_query
from services.search.topics.store import TopicStore
from services.search.topics.tagger import Tagger

MAX_BY_CHARS = 200
MAX_COPY_NAMES = 100
MARK_TEXT_CHARS = 280
MAX_MARKS_PER_CALL = 1000
SCORERS = {"description": topics_pb2.TOPIC_SCORER_DESCRIPTION, "prototype": topics_pb2.TOPIC_SCORER_PROTOTYPE,
           "classifier": topics_pb2.TOPIC_SCORER_CLASSIFIER}
STATES = {"queued": topics_pb2.TAGGING_JOB_STATE_QUEUED, "running": topics_pb2.TAGGING_JOB_STATE_RUNNING,
          "done": topics_pb2.TAGGING_JOB_STATE_DONE, "superseded": topics_pb2.TAGGING_JOB_STATE_SUPERSEDED,
          "failed": topics_pb2.TAGGING_JOB_STATE_FAILED}
KINDS = {"retag": topics_pb2.TAGGING_JOB_KIND_RETAG, "reenrich": topics_pb2.TAGGING_JOB_KIND_REENRICH}
# Posts timed to estimate a re-enrichment.
SPEED_SAMPLE = 32


class Topics:
    def __init__(self, es: Elasticsearch, index_prefix: str, store: TopicStore, tagger: Tagger, jobs: TaggingJobs,
                 embed: Embed, enrich: Enrich | None = None) -> None:
        self.es = es
        self.prefix = index_prefix
        self.store = store
        self.tagger = tagger
        self.jobs = jobs
        self.embed = embed
        self.enrich = enrich

    # --- definitions ---------------------------------------------------------------------------
    def put(self, request: topics_pb2.PutTopicRequest) -> topics_pb2.PutTopicResponse:
        tenant = require_tenant(request.tenant)
        by = _require_by(request.by)
        if not request.HasField("topic"):
            raise InvalidArgument("topic", "must be set")
        given = request.topic
        definition = TopicDefinition(given.name, given.description, tuple(given.examples),
                                     tuple(given.counter_examples), given.query, given.threshold).validated()
        existing = {topic.name for topic, _ in self.store.topics(tenant)}
        if definition.name not in existing and len(existing) >= MAX_TOPICS_PER_TENANT:
            raise InvalidArgument("topic.name", f"a tenant has at most {MAX_TOPICS_PER_TENANT} topics")
        compiled = compile_topic(definition, self.embed)
        topic, quality = self._refit(tenant, compiled)
        version = self.store.change(tenant, lambda v: self.store.put_topic(tenant, topic, v, by, quality.as_dict()))
        self.store.record(tenant, "put", definition.name, by, version, definition=definition.as_dict())
        job = self.jobs.create(tenant, "retag", f"put topic {definition.name}", version)
        return topics_pb2.PutTopicResponse(topic=topic_message(definition, self.store.topic(tenant, definition.name)),
                                           job=job_message(job))

    def get(self, request: topics_pb2.GetTopicRequest) -> topics_pb2.GetTopicResponse:
        tenant = require_tenant(request.tenant)
        stored = self.store.topic(tenant, _require_name(request.name))
        if stored is None:
            raise NotFound(f"topic {request.name} not found for tenant {tenant}")
        return topics_pb2.GetTopicResponse(topic=topic_message(stored[0].definition, stored))

    def list_topics(self, request: topics_pb2.ListTopicsRequest) -> topics_pb2.ListTopicsResponse:
        tenant = require_tenant(request.tenant)
        return topics_pb2.ListTopicsResponse(topic_set=self._set(tenant))

    def delete(self, request: topics_pb2.DeleteTopicRequest) -> topics_pb2.DeleteTopicResponse:
        tenant = require_tenant(request.tenant)
        name, by = _require_name(request.name), _require_by(request.by)
        if self.store.topic(tenant, name) is None:
            raise NotFound(f"topic {name} not found for tenant {tenant}")
        def delete(_: int) -> None:
            self.store.delete_topic(tenant, name)

        version = self.store.change(tenant, delete)
        self.store.record(tenant, "delete", name, by, version)
        return topics_pb2.DeleteTopicResponse(job=job_message(self.jobs.create(tenant, "retag",
                                                                               f"delete topic {name}", version)))

    def copy_defaults(self, request: topics_pb2.CopyDefaultTopicsRequest) -> topics_pb2.CopyDefaultTopicsResponse:
        tenant = require_tenant(request.tenant)
        by = _require_by(request.by)
        if len(request.names) > MAX_COPY_NAMES:
            raise InvalidArgument("names", f"at most {MAX_COPY_NAMES} names")
        defaults = {topic.name: topic for topic in self.tagger.defaults.compiled()}
        unknown = [name for name in request.names if name not in defaults]
        if unknown:
            raise InvalidArgument("names", f"not default topics: {', '.join(unknown)}")
        existing = {topic.name for topic, _ in self.store.topics(tenant)}
        wanted = [name for name in (request.names or list(defaults)) if name not in existing]
        if len(existing) + len(wanted) > MAX_TOPICS_PER_TENANT:
            raise InvalidArgument("names", f"a tenant has at most {MAX_TOPICS_PER_TENANT} topics")
        if not wanted:
            return topics_pb2.CopyDefaultTopicsResponse(topic_set=self._set(tenant))
        def copy(version: int) -> None:
            for name in wanted:
                self.store.put_topic(tenant, defaults[name], version, by, _quality(defaults[name], 0, 0).as_dict())

        version = self.store.change(tenant, copy)
        for name in wanted:
            self.store.record(tenant, "copy_default", name, by, version)
        job = self.jobs.create(tenant, "retag", f"copy default topics {', '.join(wanted)}", version)
        return topics_pb2.CopyDefaultTopicsResponse(topic_set=self._set(tenant), job=job_message(job))

    # --- marks ---------------------------------------------------------------------------------
    def mark(self, request: topics_pb2.MarkPostRequest) -> topics_pb2.MarkPostResponse:
        mark = topics_pb2.PostMark(topic=request.topic, channel=request.channel, post_id=request.post_id,
                                   relevant=request.relevant)
        reply = self._mark(request.tenant, [mark], request.by, lambda position, name: name)
        response = topics_pb2.MarkPostResponse(quality=reply.quality[request.topic])
        if reply.HasField("job"):
            response.job.CopyFrom(reply.job)
        return response

    def mark_many(self, request: topics_pb2.MarkPostsRequest) -> topics_pb2.MarkPostsResponse:
        if not 1 <= len(request.marks) <= MAX_MARKS_PER_CALL:
            raise InvalidArgument("marks", f"between 1 and {MAX_MARKS_PER_CALL} marks, got {len(request.marks)}")
        return self._mark(request.tenant, list(request.marks), request.by,
                          lambda position, name: f"marks[{position}].{name}")

    def _mark(self, tenant: str, marks: list[topics_pb2.PostMark], by: str,
              where: Callable[[int, str], str]) -> topics_pb2.MarkPostsResponse:
        tenant, by = require_tenant(tenant), _require_by(by)
        stored: dict[str, tuple[CompiledTopic, dict[str, Any]]] = {}
        for position, mark in enumerate(marks):
            require_channel(mark.channel, where(position, "channel"))
            if not mark.post_id:
                raise InvalidArgument(where(position, "post_id"), "must not be empty")
            name = _require_name(mark.topic, where(position, "topic"))
            if name not in stored:
                found = self.store.topic(tenant, name)
                if found is None:
                    defaults = " (the tenant uses the default topics: copy them first)" \
                        if not self.store.topics(tenant) else ""
                    raise InvalidArgument(where(position, "topic"), f"no topic {name} in the tenant's topics{defaults}")
                stored[name] = found
        posts = self._posts(tenant, [(m.channel, m.post_id) for m in marks])
        rows = []
        for position, mark in enumerate(marks):
            post = posts.get(document_id(tenant, mark.channel, mark.post_id))
            if post is None:
                raise NotFound(f"{where(position, 'post_id')}: post {mark.channel}/{mark.post_id} not found for "
                               f"tenant {tenant}")
            if not post.get("embedding"):
                raise InvalidArgument(where(position, "post_id"), "the post has no embedding to learn from")
            rows.append({"topic": mark.topic, "doc_id": document_id(tenant, mark.channel, mark.post_id),
                         "channel": mark.channel, "post_id": mark.post_id, "relevant": mark.relevant, "by": by,
                         "text": post.get("text", "")[:MARK_TEXT_CHARS], "embedding": post["embedding"]})
        self.store.put_marks(tenant, rows)
        refitted = {name: (*self._refit(tenant, topic), topic.classifier, meta)
                    for name, (topic, meta) in stored.items()}
        # The scorer changes only where a classifier is (or was) in use; until then marks only count.
        changed = any(new.classifier is not None or old is not None for new, _, old, _ in refitted.values())

        def write(version: int) -> None:
            for new, quality, _, meta in refitted.values():
                self.store.put_topic(tenant, new, version if changed else int(meta["version"]), meta["updated_by"],
                                     quality.as_dict())

        version = self.store.change(tenant, write) if changed else self.store.set_version(tenant)
        if not changed:
            write(version)
        for row in rows:
            self.store.record(tenant, "mark", row["topic"], by, version, post_id=row["post_id"],
                              channel=row["channel"], relevant=row["relevant"])
        response = topics_pb2.MarkPostsResponse()
        for name, (_, quality, _, _) in refitted.items():
            response.quality[name].CopyFrom(quality_message(quality))
        if changed:
            topics = ", ".join(sorted(n for n, (new, _, old, _) in refitted.items() if new.classifier or old))
            response.job.CopyFrom(job_message(self.jobs.create(tenant, "retag", f"classifier of {topics} refitted",
                                                               version)))
        return response

    def list_marks(self, request: topics_pb2.ListMarksRequest) -> topics_pb2.ListMarksResponse:
        tenant = require_tenant(request.tenant)
        name = _require_name(request.topic, "topic")
        if not 0 <= request.limit <= 1000:
            raise InvalidArgument("limit", "must be between 1 and 1000 (0 means 100)")
        marks = self.store.marks(tenant, name, request.limit or 100)
        response = topics_pb2.ListMarksResponse()
        for mark in marks:
            item = response.marks.add(channel=mark["channel"], post_id=mark["post_id"], relevant=mark["relevant"],
                                      by=mark["by"], text=mark.get("text", ""))
            item.marked_at.FromJsonString(_zulu(mark["marked_at"]))
        return response

    # --- jobs ----------------------------------------------------------------------------------
    def get_job(self, request: topics_pb2.GetTaggingJobRequest) -> topics_pb2.GetTaggingJobResponse:
        tenant = require_tenant(request.tenant)
        found = self.store.job(request.id) if request.id else None
        if found is None or found[0]["tenant"] != tenant:
            raise NotFound(f"tagging job {request.id!r} not found for tenant {tenant}")
        return topics_pb2.GetTaggingJobResponse(job=job_message(found[0]))

    def list_jobs(self, request: topics_pb2.ListTaggingJobsRequest) -> topics_pb2.ListTaggingJobsResponse:
        tenant = require_tenant(request.tenant)
        if not 0 <= request.limit <= 100:
            raise InvalidArgument("limit", "must be between 1 and 100 (0 means 20)")
        return topics_pb2.ListTaggingJobsResponse(jobs=[job_message(j) for j in self.store.jobs(tenant,
                                                                                                request.limit or 20)])

    def reenrich(self, request: topics_pb2.ReenrichPostsRequest) -> topics_pb2.ReenrichPostsResponse:
        tenant = require_tenant(request.tenant)
        if self.enrich is None:
            raise InvalidArgument("start", "this search server has no inference service to re-enrich with")
        alias = alias_name(self.prefix, tenant)
        sample = self.es.search(index=alias, size=SPEED_SAMPLE, source_includes=["text"], ignore_unavailable=True,
                                allow_no_indices=True, query={"match_all": {}})["hits"]["hits"]
        texts = [hit["_source"].get("text") or "." for hit in sample] or ["."]
        started = time.monotonic()
        probe = self.enrich([post_pb2.Post(tenant=tenant, channel="probe", id=str(i), text=t)
                             for i, t in enumerate(texts)])
        speed = len(texts) / max(1e-6, time.monotonic() - started)
        versions = {part: getattr(probe[0].model_versions, part) for part in ("encoder", "sentiment", "tone")}
        outdated = int(self.es.count(index=alias, query=outdated_query(versions), ignore_unavailable=True,
                                     allow_no_indices=True)["count"])
        total = int(self.es.count(index=alias, ignore_unavailable=True, allow_no_indices=True)["count"])
        response = topics_pb2.ReenrichPostsResponse(
            current_versions=", ".join(f"{k}={v}" for k, v in versions.items() if v), outdated_posts=outdated,
            total_posts=total, estimated_seconds=round(outdated / speed, 3), posts_per_second=round(speed, 1))
        if request.start and outdated:
            job = self.jobs.create(tenant, "reenrich", "models changed", self.tagger.current(tenant).version,
                                   model_versions=versions)
            response.job.CopyFrom(job_message(job))
        return response

    # --- helpers -------------------------------------------------------------------------------
    def _refit(self, tenant: str, topic: CompiledTopic) -> tuple[CompiledTopic, Quality]:
        """The topic with its classifier refitted on its marks and examples, and its quality."""
        marks = self.store.marks(tenant, topic.name)
        relevant = _rows([m["embedding"] for m in marks if m["relevant"]], topic.example_vectors)
        not_relevant = _rows([m["embedding"] for m in marks if not m["relevant"]], topic.counter_vectors)
        classifier = fit_classifier(relevant, not_relevant, topic.definition.threshold)
        quality = classifier.quality if classifier is not None else _quality(topic, len(relevant), len(not_relevant))
        return topic.with_classifier(classifier), quality

    def _posts(self, tenant: str, keys: Sequence[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """Stored posts by document id, with their text and embedding."""
        ids = sorted({document_id(tenant, channel, post_id) for channel, post_id in keys})
        reply = self.es.search(index=alias_name(self.prefix, tenant), size=len(ids), ignore_unavailable=True,
                               allow_no_indices=True, source_includes=["doc_id", "text", "embedding"],
                               query={"terms": {"doc_id": ids}})
        return {hit["_source"]["doc_id"]: hit["_source"] for hit in reply["hits"]["hits"]}

    def _set(self, tenant: str) -> topics_pb2.TopicSet:
        stored = self.store.topics(tenant)
        version = self.store.set_version(tenant)
        if stored:
            return topics_pb2.TopicSet(tenant=tenant, version=version,
                                       topics=[topic_message(t.definition, (t, meta)) for t, meta in stored])
        defaults = [topic_message(d, None) for d in self.tagger.defaults.definitions]
        return topics_pb2.TopicSet(tenant=tenant, version=version, defaults=True, topics=defaults)


def topic_message(definition: TopicDefinition, stored: tuple[CompiledTopic, dict[str, Any]] | None) -> topics_pb2.Topic:
    """The definition with, when it is stored, its version, author and quality."""
    message = topics_pb2.Topic(name=definition.name, description=definition.description,
                               examples=definition.examples, counter_examples=definition.counter_examples,
                               query=definition.query, threshold=definition.threshold)
    if stored is None:
        scorer = "prototype" if definition.examples else "description"
        relevant, not_relevant = len(definition.examples), len(definition.counter_examples)
        quality = Quality(scorer, relevant, not_relevant, marks_needed(relevant, not_relevant))
        message.quality.CopyFrom(quality_message(quality))
        return message
    meta = stored[1]
    message.version = int(meta["version"])
    message.updated_at.FromJsonString(_zulu(meta["updated_at"]))
    message.updated_by = meta["updated_by"]
    message.quality.CopyFrom(quality_message(Quality.from_dict(meta["quality"])))
    return message


def _rows(embeddings: Sequence[Sequence[float]], extra: np.ndarray) -> np.ndarray:
    dims = extra.shape[1] if extra.ndim == 2 and extra.shape[1] else (len(embeddings[0]) if embeddings else 0)
    marked = np.array(embeddings, dtype=np.float32).reshape(-1, dims) if dims else np.zeros((0, 0), np.float32)
    return np.vstack([marked, extra]) if len(extra) else marked


def _quality(topic: CompiledTopic, relevant: int, not_relevant: int) -> Quality:
    scorer = "prototype" if topic.definition.examples else "description"
    return Quality(scorer, relevant, not_relevant, marks_needed(relevant, not_relevant))


def quality_message(quality: Quality) -> topics_pb2.TopicQuality:
    return topics_pb2.TopicQuality(
        scorer=SCORERS.get(quality.scorer, topics_pb2.TOPIC_SCORER_UNSPECIFIED),
        relevant_marks=quality.relevant_marks, not_relevant_marks=quality.not_relevant_marks,
        marks_needed=quality.marks_needed, precision=quality.precision, recall=quality.recall, f1=quality.f1,
        folds=quality.folds,
    )


def job_message(job: dict[str, Any]) -> topics_pb2.TaggingJob:
    message = topics_pb2.TaggingJob(
        id=job["id"], tenant=job["tenant"], kind=KINDS.get(job["kind"], topics_pb2.TAGGING_JOB_KIND_UNSPECIFIED),
        state=STATES.get(job["state"], topics_pb2.TAGGING_JOB_STATE_UNSPECIFIED),
        topic_set_version=int(job["topic_set_version"]), total=int(job.get("total", 0)),
        processed=int(job.get("processed", 0)), changed=int(job.get("changed", 0)),
        posts_per_second=float(job.get("posts_per_second", 0.0)), eta_seconds=float(job.get("eta_seconds", 0.0)),
        error=job.get("error", ""), reason=job.get("reason", ""),
    )
    for field in ("created_at", "started_at", "finished_at"):
        if job.get(field):
            getattr(message, field).FromJsonString(_zulu(job[field]))
    return message


def _zulu(stamp: str) -> str:
    return stamp.replace("+00:00", "Z")


def _require_name(value: str, field: str = "name") -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    return value


def _require_by(value: str) -> str:
    if not value.strip():
        raise InvalidArgument("by", "must say who makes the change")
    if len(value) > MAX_BY_CHARS:
        raise InvalidArgument("by", f"at most {MAX_BY_CHARS} characters")
    return value.strip()

