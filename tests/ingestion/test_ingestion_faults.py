"""Crashes during a 10,000-post stream lose no acknowledged post and store none twice.

Real processes throughout: ingestion, search and alerting servers and a dedicated inference server
(Ray Serve), each killed with SIGKILL mid-stream and restarted on the same port (ingestion on the
same spool). The client retries a batch whose call failed, as any sender must. A post whose answer
never arrived may or may not be stored, so the checks are: every acknowledged id (ACCEPTED, or
DUPLICATE on a retry: already stored) is in Elasticsearch exactly once, and nothing else is.

CIVIC_FAULT_POSTS lowers the number of posts for quick local runs; the suite runs the full 10,000.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from elasticsearch import Elasticsearch, helpers

from civic.listening.v1 import (
    inference_pb2,
    inference_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    post_pb2,
)
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from services.search.mapping import alias_name, first_index_name
from tests.fixtures.inference import session_processes

pytestmark = pytest.mark.slow

POSTS = int(os.environ.get("CIVIC_FAULT_POSTS", "10000"))
CLIENT_BATCH = 250
TENANT = "fault-city"
DRAIN_LIMIT_S = 420.0
WORDS = [
    "bus", "route", "late", "delay", "metro", "station", "pothole", "street", "light", "park", "passport",
    "office", "tax", "water", "bill", "outage", "school", "road", "closed", "snow", "plough", "garbage",
    "collection", "noise", "permit", "library", "clinic", "queue",
]
_RAY_TEMP_DIR = re.compile(rb"/tmp/civray-[A-Za-z0-9_]+")


def post_text(n: int) -> str:
    """Short, distinct texts: every post differs, so none is an exact duplicate of another."""
    words = [WORDS[(n * 7 + k * (n % 11 + 1)) % len(WORDS)] for k in range(4)]
    return f"Report {n}: " + " ".join(words) + "."


def make_post(n: int) -> post_pb2.Post:
    post = post_pb2.Post(id=f"p{n}", tenant=TENANT, channel="webhook", text=post_text(n),
                         author=post_pb2.Author(id=f"a{n % 500}"))
    post.created_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    return post


@dataclass
class Server:
    """A process restartable on the same ports and files, as a supervisor would restart it."""

    module: str
    env: dict[str, str]
    log: Path
    target: str
    ready: Callable[[Server], None]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.process = spawn([self.module], self.env, self.log)
        self.ready(self)
        return self

    def crash(self) -> None:
        """SIGKILL to every process of its session (Ray's daemons and workers too): no cleanup runs."""
        assert self.process is not None
        pids = session_processes(self.process.pid)
        temp_dirs = {m.group().decode() for pid in pids for m in _RAY_TEMP_DIR.finditer(_cmdline(pid))}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)
        deadline = time.monotonic() + 30
        while session_processes(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        for temp_dir in temp_dirs:  # a crashed private Ray leaves its session files behind
            shutil.rmtree(temp_dir, ignore_errors=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_pid(self.process.pid, timeout_s=60)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def healthy(server: Server) -> None:
    wait_healthy(server.target, 90, process=server.process)


def enrich_answers(server: Server) -> None:
    """The gRPC proxy answers health before the application is deployed: wait for a real Enrich."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert server.process is not None and server.process.poll() is None, server.log.read_text()[-3000:]
        with grpc.insecure_channel(server.target) as chan:
            try:
                inference_pb2_grpc.InferenceServiceStub(chan).Enrich(
                    inference_pb2.EnrichRequest(posts=[post_pb2.Post(text="ready?")]), timeout=10
                )
                return
            except grpc.RpcError:
                time.sleep(1.0)
    pytest.fail(f"inference not answering after 300s:\n{server.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def inference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One dedicated inference server for this module: the tests crash it, never the shared one."""
    port = free_port()
    env = {
        "CIVIC_INFERENCE_PORT": str(port),
        "CIVIC_INFERENCE_HTTP_PORT": str(free_port()),
        "CIVIC_RAY_ADDRESS": "local",
        "CIVIC_INFERENCE_MAX_BATCH_SIZE": "128",
        "CIVIC_INFERENCE_BATCH_WAIT_S": "0.05",
    }
    log = tmp_path_factory.mktemp("fault-inference") / "inference.log"
    server = Server("inference", env, log, f"127.0.0.1:{port}", enrich_answers).start()
    yield server
    server.stop()


@dataclass
class Pipeline:
    """Search, alerting and ingestion processes for one test, all restartable."""

    search: Server
    alerting: Server
    ingestion: Server
    es: Elasticsearch
    index_prefix: str
    acked: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    failed_calls: int = 0

    def send_all(self) -> None:
        """Sends POSTS posts in batches, retrying a batch until ingestion answers it."""
        with grpc.insecure_channel(self.ingestion.target) as chan:
            stub = ingestion_pb2_grpc.IngestionServiceStub(chan)
            for start in range(0, POSTS, CLIENT_BATCH):
                batch = [make_post(n) for n in range(start, min(POSTS, start + CLIENT_BATCH))]
                self.sent.update(post.id for post in batch)
                request = ingestion_pb2.IngestPostsRequest(posts=batch)
                while True:
                    try:
                        reply = stub.IngestPosts(request, timeout=30)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                            raise
                        self.failed_calls += 1
                        time.sleep(0.2)
                assert reply.rejected == 0, reply
                self.acked.update(
                    result.id for result in reply.results
                    if result.outcome in (ingestion_pb2.POST_OUTCOME_ACCEPTED, ingestion_pb2.POST_OUTCOME_DUPLICATE)
                )

    def stats(self) -> ingestion_pb2.GetIngestionStatsResponse:
        with grpc.insecure_channel(self.ingestion.target) as chan:
            return ingestion_pb2_grpc.IngestionServiceStub(chan).GetIngestionStats(
                ingestion_pb2.GetIngestionStatsRequest(), timeout=10
            )

    def wait_until(self, done: Callable[[ingestion_pb2.GetIngestionStatsResponse], bool],
                   limit_s: float = DRAIN_LIMIT_S) -> ingestion_pb2.GetIngestionStatsResponse:
        deadline = time.monotonic() + limit_s
        while True:
            stats = self.stats()
            if done(stats):
                return stats
            assert time.monotonic() < deadline, f"gave up waiting: {stats}"
            time.sleep(0.2)

    def stored_ids(self) -> collections.Counter[str]:
        alias = alias_name(self.index_prefix, TENANT)
        self.es.indices.refresh(index=alias)
        hits = helpers.scan(self.es, index=alias, query={"query": {"match_all": {}}}, _source=["post_id"], size=2000)
        return collections.Counter(hit["_source"]["post_id"] for hit in hits)

    def check_exactly_acked(self) -> None:
        stats = self.wait_until(lambda s: s.pending == 0 and s.forwarded > 0)
        assert (stats.rejected, stats.last_error) == (0, "")
        stored = self.stored_ids()
        assert [pid for pid, times in stored.items() if times > 1] == []
        assert set(stored) - self.sent == set(), "stored posts that were never sent"
        assert self.acked - set(stored) == set(), "acknowledged posts missing"
        # The client retried every failed call until it was answered, so every post was acknowledged.
        assert self.acked == self.sent and len(stored) == POSTS == stats.forwarded
        alias = alias_name(self.index_prefix, TENANT)
        assert self.es.count(index=alias)["count"] == POSTS


@pytest.fixture
def pipeline(elasticsearch_url: str, inference: Server, tmp_path: Path) -> Iterator[Pipeline]:
    prefix = f"test-faults-{uuid.uuid4().hex[:8]}"
    ports = {name: free_port() for name in ("search", "alerting", "ingestion")}
    env = {
        "ES_URL": elasticsearch_url,
        "CIVIC_INDEX_PREFIX": prefix,
        "CIVIC_INFERENCE_TARGET": inference.target,
        "CIVIC_ALERTING_STATE_PATH": str(tmp_path / "alerting.sqlite3"),
        "CIVIC_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        "CIVIC_FORWARD_BATCH_SIZE": "512",
        "CIVIC_RPC_TIMEOUT_S": "30",
        "CIVIC_WEBHOOK_PORT": "0",
        **{f"CIVIC_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **{f"CIVIC_{name.upper()}_TARGET": f"127.0.0.1:{port}" for name, port in ports.items()},
    }
    servers = {
        name: Server(f"services.{name}", env, tmp_path / f"{name}.log", f"127.0.0.1:{port}", healthy)
        for name, port in ports.items()
    }
    es = Elasticsearch(elasticsearch_url, request_timeout=60)
    try:
        for server in servers.values():
            server.start()
        yield Pipeline(servers["search"], servers["alerting"], servers["ingestion"], es, prefix)
    finally:
        for server in reversed(servers.values()):
            server.stop()
        # 10,000 documents with their vectors: not left to weigh on the shared node.
        es.indices.delete(index=first_index_name(prefix, TENANT), ignore_unavailable=True)
        es.close()


def stream_in_background(pipeline: Pipeline) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pipeline.send_all()
        except BaseException as exc:  # surfaced by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="client", daemon=True)
    thread.start()
    return thread, errors


def finish_stream(thread: threading.Thread, errors: list[BaseException]) -> None:
    thread.join(DRAIN_LIMIT_S)
    assert not thread.is_alive(), "the client never finished sending"
    if errors:
        raise errors[0]


def crash_downstream_mid_stream(pipeline: Pipeline, victim: Server, stage: str) -> None:
    """Crashes victim once a quarter of the posts went through, keeps it down until the forwarder
    reports the failed stage, then restarts it."""
    thread, errors = stream_in_background(pipeline)
    pipeline.wait_until(lambda s: s.forwarded >= POSTS // 4)
    victim.crash()
    down = pipeline.wait_until(lambda s: s.last_error.startswith(stage), limit_s=120)
    assert down.pending > 0
    victim.start()
    finish_stream(thread, errors)
    pipeline.check_exactly_acked()


def test_search_crash_mid_stream_loses_and_duplicates_nothing(pipeline: Pipeline) -> None:
    crash_downstream_mid_stream(pipeline, pipeline.search, "IndexPosts")


def test_ingestion_crash_mid_stream_keeps_exactly_the_acknowledged_posts(pipeline: Pipeline) -> None:
    thread, errors = stream_in_background(pipeline)
    deadline = time.monotonic() + 120
    while len(pipeline.acked) < POSTS // 3:
        assert time.monotonic() < deadline and thread.is_alive(), errors
        time.sleep(0.01)
    pipeline.ingestion.crash()
    time.sleep(1.0)  # the client keeps failing meanwhile
    pipeline.ingestion.start()
    finish_stream(thread, errors)
    assert pipeline.failed_calls > 0, "the crash never reached the client"
    pipeline.check_exactly_acked()


def test_inference_crash_mid_stream_loses_and_duplicates_nothing(pipeline: Pipeline, inference: Server) -> None:
    crash_downstream_mid_stream(pipeline, inference, "Enrich")
