"""Background jobs over a tenant's stored posts: re-tagging after a topic change, re-enriching after a
model change. Tracked in Elasticsearch with their progress, so any replica can report on them.

A job does not remember where it is: it works on the posts that are not yet in the state it brings
them to (tagged by its topic set version; enriched by the current models), found by a query. So a
job that a replica's death interrupts is picked up by another replica (whose worker claims queued
jobs and running ones whose heartbeat stopped) and simply goes on; posts indexed meanwhile by a
replica with an older topic set are found by the same query. A newer topic set version supersedes
the job, whose work the newer job then does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
from elasticsearch import ConflictError, Elasticsearch, helpers

from civic.listening.v1 import post_pb2
from services.search.documents import from_document, to_document
from services.search.mapping import alias_name
from services.search.topics.store import TopicStore, now_iso
from services.search.topics.tagger import Tagger, TenantTopics, source_document

log = logging.getLogger(__name__)

HEARTBEAT_STALE_S = 60.0
MAX_ROUNDS = 5
_TAG_FIELDS = ["text", "channel", "source", "language", "author", "embedding", "topics", "topic_set_version"]
Enrich = Callable[[Sequence[post_pb2.Post]], list[post_pb2.Enrichment]]


class Superseded(Exception):
    """A newer topic set version exists: the newer job does this one's work."""


@dataclass
class Progress:
    processed: int = 0
    changed: int = 0
    started: float = 0.0


class TaggingJobs:
    def __init__(self, es: Elasticsearch, store: TopicStore, tagger: Tagger, index_prefix: str, *,
                 batch_size: int = 1000, poll_s: float = 1.0, enrich: Enrich | None = None) -> None:
        self.es = es
        self.store = store
        self.tagger = tagger
        self.prefix = index_prefix
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.enrich = enrich
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> TaggingJobs:
        self._thread = threading.Thread(target=self._run, name="tagging-jobs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def create(self, tenant: str, kind: str, reason: str, version: int, **extra: Any) -> dict[str, Any]:
        job = {
            "id": uuid.uuid4().hex, "tenant": tenant, "kind": kind, "state": "queued", "topic_set_version": version,
            "total": 0, "processed": 0, "changed": 0, "posts_per_second": 0.0, "eta_seconds": 0.0,
            "created_at": now_iso(), "started_at": None, "finished_at": None, "heartbeat_at": None, "owner": "",
            "error": "", "reason": reason, **extra,
        }
        self.store.put_job(job)
        self._wake.set()
        return job

    # --- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self._claim()
            except Exception:  # Elasticsearch away: try again later, never kill the worker
                log.exception("looking for tagging jobs failed")
                claimed = None
            if claimed is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self.run(*claimed)

    def _claim(self) -> tuple[dict[str, Any], tuple[int, int]] | None:
        stale = (datetime.now(UTC) - timedelta(seconds=HEARTBEAT_STALE_S)).isoformat(timespec="milliseconds")
        for job, seq in self.store.claimable_jobs(stale):
            claimed = {**job, "state": "running", "owner": self.owner, "heartbeat_at": now_iso(),
                       "started_at": job.get("started_at") or now_iso()}
            try:
                return claimed, self.store.put_job(claimed, seq)
            except ConflictError:
                continue  # another replica took it
        return None

    def run(self, job: dict[str, Any], seq: tuple[int, int]) -> dict[str, Any]:
        """Works a claimed job to its end state; returns it as stored last."""
        progress = Progress(started=time.monotonic())
        try:
            if job["kind"] == "reenrich":
                self._reenrich(job, seq, progress)
            else:
                self._retag(job, seq, progress)
            job = {**job, "state": "done"}
        except Superseded:
            job = {**job, "state": "superseded"}
        except ConflictError:
            log.warning("tagging job %s was taken over by another worker", job["id"])
            return job
        except Exception as exc:
            log.exception("tagging job %s failed", job["id"])
            job = {**job, "state": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000]}
        job = {**job, **self._figures(progress, job.get("total", 0)), "finished_at": now_iso(), "eta_seconds": 0.0}
        self.store.put_job(job)
        return job

    # --- re-tagging ----------------------------------------------------------------------------
    def _retag(self, job: dict[str, Any], seq: tuple[int, int], progress: Progress) -> None:
        tenant, version = job["tenant"], int(job["topic_set_version"])
        topics = self._topics(tenant, version)
        scorer = topics.scorer or self.tagger.defaults.scorer()

        def retag(hits: list[dict[str, Any]]) -> None:
            with_vectors = [hit for hit in hits if hit["_source"].get("embedding")]
            taggings = iter(scorer.tag(np.array([h["_source"]["embedding"] for h in with_vectors], dtype=np.float32),
                                       [source_document(h["_source"]) for h in with_vectors])
                            if with_vectors else [])
            updates = []
            for hit in hits:
                source = hit["_source"]
                fields: dict[str, Any] = {"topic_set_version": version}
                if source.get("embedding"):
                    tagging = next(taggings) if source.get("text", "").strip() else scorer.untagged()
                    if tagging.topics != source.get("topics", []):
                        progress.changed += 1
                    fields.update({"relevance": [{"topic": n, "score": s} for n, s in tagging.relevance],
                                   "topic": tagging.topic, "topics": tagging.topics,
                                   "model_versions": {"relevance": topics.relevance_version}})
                updates.append({"_op_type": "update", "_index": hit["_index"], "_id": hit["_id"], "doc": fields,
                                "retry_on_conflict": 3})
            self._write(updates)
            if self.store.set_version(tenant) != version:
                raise Superseded()

        outdated = {"bool": {"must_not": [{"term": {"topic_set_version": version}}]}}
        self._work(job, seq, progress, outdated, _TAG_FIELDS, retag)

    def _topics(self, tenant: str, version: int) -> TenantTopics:
        topics = self.tagger.current(tenant, fresh=True)
        if topics.version != version:
            raise Superseded()
        return topics

    # --- re-enriching --------------------------------------------------------------------------
    def _reenrich(self, job: dict[str, Any], seq: tuple[int, int], progress: Progress) -> None:
        enrich = self.enrich
        if enrich is None:
            raise RuntimeError("this search server has no inference service to re-enrich with")
        topics = self.tagger.current(job["tenant"], fresh=True)

        def reenrich(hits: list[dict[str, Any]]) -> None:
            posts = [from_document(hit["_source"]) for hit in hits]
            for enriched, enrichment in zip(posts, enrich([p.post for p in posts]), strict=True):
                enriched.enrichment.CopyFrom(enrichment)
            if topics.scorer is not None:
                self.tagger.tag_posts(posts)
            documents = [to_document(post) for post in posts]
            progress.changed += sum(1 for hit, doc in zip(hits, documents, strict=True)
                                    if hit["_source"].get("sentiment") != doc.get("sentiment"))
            # Written only over the version that was read: a post deleted (RemovePosts) or rewritten
            # while its page was being enriched is left as it now is, never brought back.
            self._write([{"_op_type": "index", "_index": hit["_index"], "_id": hit["_id"], "_source": doc,
                          "if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]}
                         for hit, doc in zip(hits, documents, strict=True)])

        self._work(job, seq, progress, outdated_query(job["model_versions"]), None, reenrich)

    # --- shared --------------------------------------------------------------------------------
    def _work(self, job: dict[str, Any], seq: tuple[int, int], progress: Progress, outdated: dict[str, Any],
              fields: list[str] | None, page: Callable[[list[dict[str, Any]]], None]) -> None:
        """Hands every post of the tenant that the query finds to page(), in pages, then looks again for
        posts written meanwhile by others (a few rounds), storing the progress after each page."""
        alias = alias_name(self.prefix, job["tenant"])
        for _ in range(MAX_ROUNDS):
            remaining = self._count(alias, outdated)
            if not remaining:
                break
            job["total"] = max(int(job.get("total", 0)), progress.processed + remaining)
            for hits in self._pages(alias, outdated, fields):
                page(hits)
                progress.processed += len(hits)
                seq = self._beat(job, seq, progress)
            self.es.indices.refresh(index=alias)

    def _write(self, actions: list[dict[str, Any]]) -> None:
        """Bulk writes; a post deleted (404) or rewritten (409) since its page was read is skipped: a
        rewritten one that is still outdated is found again by the next round."""
        _, reported = helpers.bulk(self.es, actions, refresh=False, raise_on_error=False)
        errors = cast("list[dict[str, Any]]", reported)  # a list unless stats_only
        failed = [error for error in errors if next(iter(error.values())).get("status") not in (404, 409)]
        if failed:
            raise RuntimeError(f"{len(failed)} posts could not be written, first: {failed[0]}")

    def _count(self, alias: str, query: dict[str, Any]) -> int:
        self.es.indices.refresh(index=alias, ignore_unavailable=True, allow_no_indices=True)
        reply = self.es.count(index=alias, query=query, ignore_unavailable=True, allow_no_indices=True)
        return int(reply["count"])

    def _pages(self, alias: str, query: dict[str, Any], fields: list[str] | None) -> Iterator[list[dict[str, Any]]]:
        """Every matching post once, in pages, from a point in time (writes meanwhile do not shift it)."""
        pit = self.es.open_point_in_time(index=alias, keep_alive="5m")["id"]
        after: list[Any] | None = None
        try:
            while True:
                reply = self.es.search(
                    pit={"id": pit, "keep_alive": "5m"}, query=query, size=self.batch_size,
                    sort=[{"_shard_doc": "asc"}], search_after=after, source_includes=fields,
                    track_total_hits=False, seq_no_primary_term=True,
                )
                pit = reply.get("pit_id", pit)
                hits = reply["hits"]["hits"]
                if not hits:
                    return
                yield hits
                after = hits[-1]["sort"]
        finally:
            self.es.close_point_in_time(id=pit)

    def _beat(self, job: dict[str, Any], seq: tuple[int, int], progress: Progress) -> tuple[int, int]:
        """Stores the progress; raises ConflictError when another worker took the job over."""
        job.update(self._figures(progress, int(job.get("total", 0))))
        job["heartbeat_at"] = now_iso()
        return self.store.put_job(job, seq)

    @staticmethod
    def _figures(progress: Progress, total: int) -> dict[str, Any]:
        elapsed = max(1e-6, time.monotonic() - progress.started)
        speed = progress.processed / elapsed
        left = max(0, total - progress.processed)
        return {"processed": progress.processed, "changed": progress.changed, "posts_per_second": round(speed, 1),
                "eta_seconds": round(left / speed, 1) if speed > 0 else 0.0}


def outdated_query(versions: dict[str, str]) -> dict[str, Any]:
    """Posts enriched by any other encoder, sentiment or tone version than these."""
    return {"bool": {"should": [
        {"bool": {"must_not": [{"term": {f"model_versions.{part}": value}}]}}
        for part, value in versions.items() if value
    ], "minimum_should_match": 1}}
