"""The soak bench's load: synthetic posts with unique ids, planted bursts of a marker phrase, and
client threads that call IngestPosts at a paced rate and honour backpressure.

A refused call (RESOURCE_EXHAUSTED) is sent again, the same posts, after the retry hint the server
gave (google.rpc.RetryInfo, else the `retry-after` trailer); a refusal without a hint is counted
apart, since a sender then has nothing to go by. UNAVAILABLE and DEADLINE_EXCEEDED are expected only
while ingestion itself is being restarted; any other error is recorded as a failure, and the batch is
still sent again, so that no post is given up.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc, post_pb2
from services.devstack.post_files import iter_posts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "posts.jsonl"
TENANT = "soak-city"
MARKER = "quarry lane sinkhole"
RULE_ID = "soak-marker-burst"
BURST_POSTS = 30
BURST_THRESHOLD = 20
NO_HINT_WAIT_S = 1.0
CALL_TIMEOUT_S = 30.0
ACCEPTED = (ingestion_pb2.POST_OUTCOME_ACCEPTED, ingestion_pb2.POST_OUTCOME_DUPLICATE)
RESTART_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

RULES_YAML = f"""\
- id: {RULE_ID}
  tenant: {TENANT}
  name: Planted burst of the marker phrase
  kind: query_match
  query: '"{MARKER}"'
  threshold: {BURST_THRESHOLD}
  window_seconds: 60
  severity: warning
"""


def retry_hint_s(error: grpc.RpcError) -> float | None:
    """The server's retry delay: RetryInfo in the rich status, else the retry-after trailer."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "retry-after":
            return float(value)
    return None


class PostSource:
    """Hands out batches of fresh posts, thread-safely; posts of a planted burst go first once due.

    Texts are the example posts' (eight languages, ~250 characters), never the marker; a burst is
    BURST_POSTS posts carrying the marker, all dated inside one epoch-aligned minute, so the rule
    fires exactly once for it.
    """

    def __init__(self, seed: int, burst_at: list[float]) -> None:
        examples = [record.post for record in iter_posts(EXAMPLES) if record.post is not None]
        random.Random(seed).shuffle(examples)
        self._examples = itertools.cycle(examples)
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._bursts = sorted(burst_at)
        self._due: list[post_pb2.Post] = []
        self.planted_windows: list[int] = []

    def _post(self, text_suffix: str = "", created: float | None = None) -> post_pb2.Post:
        example = next(self._examples)
        n = next(self._numbers)
        post = post_pb2.Post(id=f"soak-{n:07d}", tenant=TENANT, channel=example.channel, source=example.source,
                             text=example.text + text_suffix, language=example.language)
        post.author.CopyFrom(example.author)
        post.created_at.FromDatetime(datetime.fromtimestamp(created or time.time(), UTC))
        return post

    def batch(self, size: int) -> list[post_pb2.Post]:
        with self._lock:
            now = time.time()
            while self._bursts and self._bursts[0] <= now:
                window = int(self._bursts.pop(0) // 60 * 60)
                self.planted_windows.append(window)
                self._due += [self._post(f" The {MARKER} is back, report {k}.", window + k * 0.5)
                              for k in range(BURST_POSTS)]
            taken, self._due = self._due[:size], self._due[size:]
            return taken + [self._post() for _ in range(size - len(taken))]


@dataclass
class Ledger:
    """What the clients saw, shared by all of them."""

    sent: set[str] = field(default_factory=set)
    accepted_at: dict[str, float] = field(default_factory=dict)
    refusals: int = 0
    refusals_without_hint: int = 0
    hints: list[float] = field(default_factory=list)
    restarts_seen: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Clients:
    """`count` threads offering `rate` posts/s in all until `until` (monotonic)."""

    target: str
    source: PostSource
    count: int
    rate: float
    batch_size: int
    ingestion_restarting: Callable[[], bool]
    ledger: Ledger = field(default_factory=Ledger)

    def run(self, until: float) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(i, until), name=f"client-{i}", daemon=True)
                   for i in range(self.count)]
        for thread in threads:
            thread.start()
        return threads

    def _client(self, index: int, until: float) -> None:
        interval = self.batch_size * self.count / self.rate
        next_at = time.monotonic() + interval * index / self.count
        with grpc.insecure_channel(self.target) as chan:
            stub = ingestion_pb2_grpc.IngestionServiceStub(chan)
            while next_at < until:
                time.sleep(max(0.0, next_at - time.monotonic()))
                posts = self.source.batch(self.batch_size)
                with self.ledger.lock:
                    self.ledger.sent.update(post.id for post in posts)
                self._deliver(stub, ingestion_pb2.IngestPostsRequest(posts=posts))
                next_at = max(next_at + interval, time.monotonic())

    def _deliver(
        self, stub: ingestion_pb2_grpc.IngestionServiceStub, request: ingestion_pb2.IngestPostsRequest
    ) -> None:
        """Sends until answered: the same posts again after each refusal or failed call."""
        for attempt in itertools.count():
            try:
                reply = stub.IngestPosts(request, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as error:
                time.sleep(self._wait_after(error, attempt))
                continue
            now = time.time()
            with self.ledger.lock:
                self.ledger.rejected += reply.rejected
                for result in reply.results:
                    if result.outcome in ACCEPTED:
                        self.ledger.accepted_at.setdefault(result.id, now)
            return

    def _wait_after(self, error: grpc.RpcError, attempt: int) -> float:
        code = error.code()  # type: ignore[attr-defined]
        with self.ledger.lock:
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                self.ledger.refusals += 1
                hint = retry_hint_s(error)
                if hint is None:
                    self.ledger.refusals_without_hint += 1
                    return NO_HINT_WAIT_S
                self.ledger.hints.append(hint)
                return hint
            if code in RESTART_CODES and self.ingestion_restarting():
                self.ledger.restarts_seen += 1
            else:
                self.ledger.failures[f"{code.name}: {error.details()}"[:160]] += 1  # type: ignore[attr-defined]
        return min(0.2 * 2**attempt, 2.0)


def burst_times(start: float, minutes: int) -> Iterator[float]:
    """One burst per load minute, 40 s into it (clear of the kill at 20 s)."""
    for minute in range(minutes):
        yield start + minute * 60 + 40
