"""One queue of documents from every concurrent IndexPosts call, written in shared bulk requests.

Many small calls (a forwarder per ingestion replica, each sending what it has) would otherwise
each pay for a bulk round trip and a refresh. Here every call's documents join one queue; a bulk
request leaves when it holds `max_docs` documents or `max_bytes` bytes, or when its oldest
document has waited `flush_interval_s`. Each caller waits on its own ticket, which is resolved only
when every one of its documents has its result: written (and refreshed, when asked), refused for
good and stored in the dead-letter index, or still failing after the retries. 429s (whole
request or item) and transient item failures are retried with exponential backoff. A queue beyond
`max_queued_docs` refuses the call as a whole (ResourceExhausted) before taking any of it, so
nothing is ever dropped once accepted.

The bulk request runs in a span that continues the trace of its first caller's `index_posts`
span and links to every other caller's, so each post's trace still reaches Elasticsearch.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from services.common import telemetry
from services.common.errors import ResourceExhausted, Unavailable
from services.common.settings import Settings
from services.search import deadletter
from services.search.client import elasticsearch_errors
from services.search.deadletter import Refused

MAX_BACKOFF_S = 10.0


@dataclass(frozen=True)
class BulkPolicy:
    """How documents are grouped into bulk requests and retried (defaults = the settings' defaults)."""

    max_docs: int = 500
    max_bytes: int = 10 * 1024 * 1024
    flush_interval_s: float = 0.05
    max_queued_docs: int = 50_000
    workers: int = 2
    retry_rounds: int = 5
    backoff_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> BulkPolicy:
        return cls(
            max_docs=settings.search_bulk_max_docs, max_bytes=settings.search_bulk_max_bytes,
            flush_interval_s=settings.search_bulk_flush_interval_s,
            max_queued_docs=settings.search_bulk_max_queued_docs, workers=settings.search_bulk_workers,
            retry_rounds=settings.search_bulk_retry_rounds, backoff_s=settings.search_bulk_backoff_s,
        )

    def backoff(self, round_: int) -> float:
        return float(min(self.backoff_s * 2**round_, MAX_BACKOFF_S))


@dataclass(frozen=True)
class ItemResult:
    """What became of one document: written, or not with the cluster's reason."""

    written: bool
    reason: str = ""
    dead_lettered: bool = False


WRITTEN = ItemResult(written=True)


class Ticket:
    """One caller's documents; done when each has its result, or when their batch failed as a whole."""

    def __init__(self, size: int, traceparent: str) -> None:
        self.traceparent = traceparent
        self._results: list[ItemResult | None] = [None] * size
        self._remaining = size
        self._error: Exception | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        if size == 0:
            self._done.set()

    def resolve(self, position: int, result: ItemResult) -> None:
        with self._lock:
            if self._results[position] is None:
                self._results[position] = result
                self._remaining -= 1
            if self._remaining == 0:
                self._done.set()

    def fail(self, error: Exception) -> None:
        with self._lock:
            self._error = self._error or error
            self._done.set()

    def wait(self) -> list[ItemResult]:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return [result for result in self._results if result is not None]


@dataclass
class _Queued:
    ticket: Ticket
    position: int
    index: str
    document: dict[str, Any]
    lines: bytes  # the action line and the source line of the bulk body
    queued_at: float


@dataclass
class WriterStats:
    """Counts an operator (and the tests) can read: how well calls are being merged."""

    bulk_requests: int = 0
    documents: int = 0
    callers_per_request: list[int] = field(default_factory=list)


class BulkWriter:
    """The shared queue and the worker threads that send it as bulk requests."""

    def __init__(self, es: Elasticsearch, policy: BulkPolicy, refresh: bool, deadletter_prefix: str) -> None:
        self.es = es
        self.policy = policy
        self.refresh = refresh
        self.deadletter_prefix = deadletter_prefix
        self.stats = WriterStats()
        self._queue: deque[_Queued] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._closed = False
        self._workers: list[threading.Thread] = []

    def submit(self, documents: Sequence[tuple[str, dict[str, Any]]], traceparent: str = "") -> Ticket:
        """Queues (index, document) pairs for writing; wait on the returned ticket for their results."""
        lines = [_bulk_lines(index, document) for index, document in documents]
        ticket = Ticket(len(documents), traceparent)
        with self._cond:
            if self._closed:
                raise Unavailable("the search service is shutting down")
            if len(self._queue) + len(documents) > self.policy.max_queued_docs:
                raise ResourceExhausted(
                    f"{len(self._queue)} documents are waiting to be indexed (limit "
                    f"{self.policy.max_queued_docs}); retry later"
                )
            now = time.monotonic()
            for position, ((index, document), body) in enumerate(zip(documents, lines, strict=True)):
                self._queue.append(_Queued(ticket, position, index, document, body, now))
                self._queued_bytes += len(body)
            self._start_workers()
            self._cond.notify_all()
        return ticket

    def queued(self) -> int:
        """Documents waiting for a bulk request."""
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        """Sends what is queued, then stops the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout=60)

    def _start_workers(self) -> None:
        while len(self._workers) < self.policy.workers:
            worker = threading.Thread(target=self._work, name=f"bulk-writer-{len(self._workers)}", daemon=True)
            self._workers.append(worker)
            worker.start()

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._write(batch)

    def _next_batch(self) -> list[_Queued] | None:
        """Blocks until a batch is due: full by count or bytes, its oldest document due, or closing."""
        policy = self.policy
        with self._cond:
            while True:
                if self._queue:
                    waited = time.monotonic() - self._queue[0].queued_at
                    full = len(self._queue) >= policy.max_docs or self._queued_bytes >= policy.max_bytes
                    if full or waited >= policy.flush_interval_s or self._closed:
                        return self._pop_batch()
                    self._cond.wait(policy.flush_interval_s - waited)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()

    def _pop_batch(self) -> list[_Queued]:
        batch: list[_Queued] = []
        size = 0
        while self._queue and len(batch) < self.policy.max_docs:
            if batch and size + len(self._queue[0].lines) > self.policy.max_bytes:
                break
            item = self._queue.popleft()
            batch.append(item)
            size += len(item.lines)
        self._queued_bytes -= size
        return batch

    def _write(self, batch: list[_Queued]) -> None:
        tickets = list(dict.fromkeys(item.ticket for item in batch))
        attributes = {"civic.batch.size": len(batch), "civic.batch.callers": len(tickets)}
        with telemetry.span_joining("bulk_write", [t.traceparent for t in tickets], attributes, tracer_name=__name__):
            try:
                with elasticsearch_errors():
                    results = self._send(batch)
                    self._dead_letter(batch, results)
                    if self.refresh:
                        self.es.indices.refresh(index=",".join(sorted({item.index for item in batch})))
            except Exception as error:  # every waiting caller must hear of it, whatever it is
                for ticket in tickets:
                    ticket.fail(error)
                return
        telemetry.record_batch("index", len(batch))
        with self._cond:
            self.stats.bulk_requests += 1
            self.stats.documents += len(batch)
            self.stats.callers_per_request.append(len(tickets))
        for item, result in zip(batch, results, strict=True):
            item.ticket.resolve(item.position, result)

    def _send(self, batch: list[_Queued]) -> list[ItemResult]:
        """One bulk request, then retry rounds for the 429 and transient items (or a 429 request)."""
        results: list[ItemResult | None] = [None] * len(batch)
        pending = list(range(len(batch)))
        for round_ in range(self.policy.retry_rounds + 1):
            last = round_ == self.policy.retry_rounds
            try:
                # Pre-serialized lines, as elasticsearch.helpers sends them (the stubs only know dicts).
                reply = self.es.bulk(operations=[batch[i].lines for i in pending])  # type: ignore[misc]
            except ApiError as exc:
                if exc.meta.status != 429 or last:
                    raise
                time.sleep(self.policy.backoff(round_))
                continue
            retry: list[int] = []
            for position, item in zip(pending, reply["items"], strict=True):
                outcome: dict[str, Any] = next(iter(item.values()), {})
                if 200 <= int(outcome.get("status", 0)) < 300:
                    results[position] = WRITTEN
                elif _is_transient(outcome) and not last:
                    retry.append(position)
                else:
                    results[position] = ItemResult(False, _reason(outcome), dead_lettered=not _is_transient(outcome))
            if not retry:
                break
            pending = retry
            time.sleep(self.policy.backoff(round_))
        return [result or ItemResult(False, "not written") for result in results]

    def _dead_letter(self, batch: list[_Queued], results: list[ItemResult]) -> None:
        """Refused documents go to the dead-letter index before their callers hear of them."""
        refused = [Refused(item.document, result.reason) for item, result in zip(batch, results, strict=True)
                   if result.dead_lettered]
        if refused:
            deadletter.store(self.es, self.deadletter_prefix, refused, self.refresh)


def _bulk_lines(index: str, document: dict[str, Any]) -> bytes:
    """Serialized once, in the caller's thread, so the workers only concatenate."""
    action = json.dumps({"index": {"_index": index, "_id": document["doc_id"]}}, separators=(",", ":"))
    source = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return f"{action}\n{source}".encode()


# Item failures that may pass on a later try; anything else (a mapping error) never will.
_TRANSIENT_STATUS = {429, 502, 503, 504}
_TRANSIENT_TYPES = {"es_rejected_execution_exception", "unavailable_shards_exception",
                    "circuit_breaking_exception", "process_cluster_event_timeout_exception"}


def _is_transient(result: dict[str, Any]) -> bool:
    error = result.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    return int(result.get("status", 0)) in _TRANSIENT_STATUS or kind in _TRANSIENT_TYPES


def _reason(result: dict[str, Any]) -> str:
    error = result.get("error", {})
    if isinstance(error, dict):
        cause = error.get("caused_by", {})
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        return f"{reason} ({cause.get('reason')})" if cause.get("reason") else reason
    return str(error)
