"""Where tenants' topics, marks, tagging jobs and their history are kept: small Elasticsearch indices.

Elasticsearch is already the service's store, it survives a pod, and every search replica reads the
same state, so a topic changed through one replica tags posts the same way on all of them. The set
version of each tenant lives in one document updated with optimistic concurrency (if_seq_no), so two
concurrent changes get two versions, never one. Writes wait for a refresh: an analyst who marks a
post and lists the marks must see it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, helpers

from services.common.relevance.scoring import CompiledTopic

KEYWORD = {"type": "keyword"}
DATE = {"type": "date"}
LONG = {"type": "long"}
MAX_MARKS_READ = 10_000

# Only what is filtered or sorted on is mapped; vectors and definitions stay in _source unindexed.
MAPPINGS: dict[str, dict[str, Any]] = {
    "topics": {"tenant": KEYWORD, "name": KEYWORD, "version": LONG, "updated_at": DATE, "updated_by": KEYWORD},
    "sets": {"tenant": KEYWORD, "version": LONG, "updated_at": DATE},
    "marks": {"tenant": KEYWORD, "topic": KEYWORD, "doc_id": KEYWORD, "channel": KEYWORD, "post_id": KEYWORD,
              "relevant": {"type": "boolean"}, "by": KEYWORD, "marked_at": DATE},
    "jobs": {"tenant": KEYWORD, "id": KEYWORD, "kind": KEYWORD, "state": KEYWORD, "created_at": DATE,
             "heartbeat_at": DATE, "owner": KEYWORD},
    "history": {"tenant": KEYWORD, "action": KEYWORD, "topic": KEYWORD, "by": KEYWORD, "at": DATE,
                "version": LONG},
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TopicStore:
    def __init__(self, es: Elasticsearch, prefix: str) -> None:
        self.es = es
        self.names = {kind: prefix if kind == "topics" else f"{prefix}-{kind}" for kind in MAPPINGS}
        self._created = False

    def ensure_indices(self) -> None:
        if self._created:
            return
        for kind, properties in MAPPINGS.items():
            name = self.names[kind]
            if self.es.indices.exists(index=name):
                continue
            try:
                self.es.indices.create(index=name, mappings={"dynamic": False, "properties": properties},
                                       settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"})
            except ApiError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
        self._created = True

    # --- the set version -----------------------------------------------------------------------
    def set_version(self, tenant: str) -> int:
        self.ensure_indices()
        try:
            return int(self.es.get(index=self.names["sets"], id=tenant)["_source"]["version"])
        except NotFoundError:
            return 0

    def change(self, tenant: str, write: Callable[[int], None]) -> int:
        """Makes a change under the tenant's next set version: write(version) stores it, then the set
        version moves to it. The version moves last, so whoever reads version N finds every change up
        to N in place; a concurrent change makes this one write again under the version after it."""
        self.ensure_indices()
        for _ in range(50):
            try:
                current = self.es.get(index=self.names["sets"], id=tenant)
                version, guard = int(current["_source"]["version"]), (current["_seq_no"], current["_primary_term"])
            except NotFoundError:
                version, guard = 0, None
            write(version + 1)
            document = {"tenant": tenant, "version": version + 1, "updated_at": now_iso()}
            try:
                if guard is None:
                    self.es.create(index=self.names["sets"], id=tenant, document=document, refresh=True)
                else:
                    self.es.index(index=self.names["sets"], id=tenant, document=document, refresh=True,
                                  if_seq_no=guard[0], if_primary_term=guard[1])
                return version + 1
            except ConflictError:
                time.sleep(0.01)
        raise RuntimeError(f"could not take a new topic set version for {tenant}")

    # --- definitions ---------------------------------------------------------------------------
    def topics(self, tenant: str) -> list[tuple[CompiledTopic, dict[str, Any]]]:
        """The tenant's compiled topics by name, each with its stored metadata."""
        self.ensure_indices()
        reply = self.es.search(index=self.names["topics"], query={"term": {"tenant": tenant}}, size=1000,
                               sort=[{"name": "asc"}])
        return [(CompiledTopic.from_dict(hit["_source"]["topic"]), hit["_source"]) for hit in reply["hits"]["hits"]]

    def topic(self, tenant: str, name: str) -> tuple[CompiledTopic, dict[str, Any]] | None:
        self.ensure_indices()
        try:
            source = self.es.get(index=self.names["topics"], id=_topic_id(tenant, name))["_source"]
        except NotFoundError:
            return None
        return CompiledTopic.from_dict(source["topic"]), source

    def put_topic(self, tenant: str, topic: CompiledTopic, version: int, by: str, quality: dict[str, Any]) -> None:
        self.ensure_indices()
        self.es.index(index=self.names["topics"], id=_topic_id(tenant, topic.name), refresh=True, document={
            "tenant": tenant, "name": topic.name, "version": version, "updated_at": now_iso(), "updated_by": by,
            "quality": quality, "topic": topic.as_dict(),
        })

    def delete_topic(self, tenant: str, name: str) -> bool:
        self.ensure_indices()
        try:
            self.es.delete(index=self.names["topics"], id=_topic_id(tenant, name), refresh=True)
        except NotFoundError:
            return False
        # By search and bulk delete: delete-by-query needs the reindex module, which not every cluster has.
        marks = {"bool": {"filter": [{"term": {"tenant": tenant}}, {"term": {"topic": name}}]}}
        while ids := [hit["_id"] for hit in self.es.search(index=self.names["marks"], query=marks, size=1000,
                                                            source=False)["hits"]["hits"]]:
            helpers.bulk(self.es, ({"_op_type": "delete", "_index": self.names["marks"], "_id": i} for i in ids),
                         refresh=True, raise_on_error=False)
        return True

    # --- marks ---------------------------------------------------------------------------------
    def put_marks(self, tenant: str, marks: list[dict[str, Any]]) -> None:
        """Each mark ({"topic", "doc_id", ...}) replaces an earlier one of the same post and topic."""
        self.ensure_indices()
        at = now_iso()
        helpers.bulk(self.es, ({"_index": self.names["marks"], "_id": _mark_id(tenant, m["topic"], m["doc_id"]),
                                "_source": {"tenant": tenant, "marked_at": at, **m}} for m in marks), refresh=True)

    def marks(self, tenant: str, topic: str, limit: int = MAX_MARKS_READ) -> list[dict[str, Any]]:
        """Newest first; with their embeddings."""
        self.ensure_indices()
        reply = self.es.search(index=self.names["marks"], size=limit, sort=[{"marked_at": "desc"}],
                               query={"bool": {"filter": [{"term": {"tenant": tenant}}, {"term": {"topic": topic}}]}})
        return [hit["_source"] for hit in reply["hits"]["hits"]]

    # --- history -------------------------------------------------------------------------------
    def record(self, tenant: str, action: str, topic: str, by: str, version: int, **details: Any) -> None:
        """Appends what changed, who changed it and the version it made: the topics' audit trail."""
        self.ensure_indices()
        self.es.index(index=self.names["history"], document={
            "tenant": tenant, "action": action, "topic": topic, "by": by, "at": now_iso(), "version": version,
            **details,
        })

    # --- jobs ----------------------------------------------------------------------------------
    def put_job(self, job: dict[str, Any], seq: tuple[int, int] | None = None) -> tuple[int, int]:
        """Writes a job; with seq (seq_no, primary_term) only if nobody wrote it since. Returns the new seq."""
        self.ensure_indices()
        reply = self.es.index(index=self.names["jobs"], id=job["id"], document=job, refresh=True,
                              if_seq_no=seq[0] if seq else None, if_primary_term=seq[1] if seq else None)
        return int(reply["_seq_no"]), int(reply["_primary_term"])

    def job(self, job_id: str) -> tuple[dict[str, Any], tuple[int, int]] | None:
        self.ensure_indices()
        try:
            reply = self.es.get(index=self.names["jobs"], id=job_id)
        except NotFoundError:
            return None
        return reply["_source"], (int(reply["_seq_no"]), int(reply["_primary_term"]))

    def jobs(self, tenant: str, limit: int) -> list[dict[str, Any]]:
        self.ensure_indices()
        reply = self.es.search(index=self.names["jobs"], query={"term": {"tenant": tenant}}, size=limit,
                               sort=[{"created_at": "desc"}])
        return [hit["_source"] for hit in reply["hits"]["hits"]]

    def claimable_jobs(self, stale_before: str) -> Iterator[tuple[dict[str, Any], tuple[int, int]]]:
        """Queued jobs, and running ones whose worker stopped beating: oldest first."""
        self.ensure_indices()
        query = {"bool": {"should": [
            {"term": {"state": "queued"}},
            {"bool": {"filter": [{"term": {"state": "running"}}, {"range": {"heartbeat_at": {"lt": stale_before}}}]}},
        ], "minimum_should_match": 1}}
        reply = self.es.search(index=self.names["jobs"], query=query, size=20, sort=[{"created_at": "asc"}],
                               seq_no_primary_term=True)
        for hit in reply["hits"]["hits"]:
            yield hit["_source"], (int(hit["_seq_no"]), int(hit["_primary_term"]))


def _topic_id(tenant: str, name: str) -> str:
    return f"{tenant}/{name}"


def _mark_id(tenant: str, topic: str, doc_id: str) -> str:
    return hashlib.sha256(f"{tenant}/{topic}/{doc_id}".encode()).hexdigest()
