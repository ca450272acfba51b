"""One post's trace across every process, exported over OTLP to a real receiver, and its metrics.

The stack runs as separate processes (ingestion, a dedicated Ray Serve inference, search with the real
Elasticsearch, alerting), all pointed at the receiver through the standard OTEL_* variables only.
Ingestion is restarted between accepting the post and forwarding it, so the forwarder's work can join
the post's trace only through the context stored in the spool.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc, post_pb2
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from tests.fixtures.inference import _wait_until_enrich_answers
from tests.fixtures.otlp import Received

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

INGEST = "/civic.listening.v1.IngestionService/IngestPosts"
ENRICH = "/civic.listening.v1.InferenceService/Enrich"
INDEX = "/civic.listening.v1.SearchService/IndexPosts"
EVALUATE = "/civic.listening.v1.AlertingService/EvaluatePosts"


class Stack:
    """The stack's processes; ingestion can be (re)started with other downstream targets."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, module: str, port_variable: str, extra: dict[str, str] | None = None) -> str:
        port = free_port()
        env = {**self.env, port_variable: str(port), **(extra or {})}
        process = spawn([module], env, self.tmp_path / f"{name}.log")
        self.processes.append(process)
        target = f"127.0.0.1:{port}"
        if module == "inference":
            _wait_until_enrich_answers(target, process, self.tmp_path / f"{name}.log")
        else:
            wait_healthy(target, 60, process=process)
        return target

    def stop(self, target_process: subprocess.Popen[bytes]) -> None:
        stop_pid(target_process.pid)
        self.processes.remove(target_process)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            stop_pid(process.pid)


@pytest.fixture
def stack(tmp_path: Path, elasticsearch_url: str, otlp_receiver: Received) -> Iterator[Stack]:
    env = {
        **otlp_receiver.env(),
        "ES_URL": elasticsearch_url,
        "CIVIC_INDEX_PREFIX": f"test-otel-{uuid.uuid4().hex[:8]}",
        "CIVIC_ES_REFRESH_ON_INDEX": "true",
        "CIVIC_ALERTING_STATE_PATH": str(tmp_path / "alerting.sqlite3"),
        "CIVIC_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        "CIVIC_INFERENCE_HTTP_PORT": str(free_port()),
        "CIVIC_RAY_ADDRESS": "local",
    }
    running = Stack(tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


def ingest_one(target: str, tenant: str) -> str:
    post = post_pb2.Post(
        id=f"otel-{uuid.uuid4().hex[:8]}", tenant=tenant, channel="webhook",
        text="Broken streetlight on Elm Street, the whole block is dark.", author=post_pb2.Author(id="a"),
    )
    post.created_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    with grpc.insecure_channel(target) as chan:
        reply = ingestion_pb2_grpc.IngestionServiceStub(chan).IngestPosts(
            ingestion_pb2.IngestPostsRequest(posts=[post]), timeout=30
        )
    assert reply.accepted == 1
    return post.id


def forwarded(target: str) -> bool:
    with grpc.insecure_channel(target) as chan:
        stats = ingestion_pb2_grpc.IngestionServiceStub(chan).GetIngestionStats(
            ingestion_pb2.GetIngestionStatsRequest(), timeout=10
        )
    return stats.forwarded == 1


def chain(spans: dict[str, dict[str, Any]], span: dict[str, Any]) -> list[tuple[str, str]]:
    """(service, name) from span up to its root."""
    names = []
    current: dict[str, Any] | None = span
    while current is not None:
        names.append((current["service"], current["name"]))
        current = spans.get(current["parent_span_id"])
    return names


def test_one_trace_covers_every_hop(stack: Stack, otlp_receiver: Received, tenant: str) -> None:
    search = stack.start("search", "services.search", "CIVIC_SEARCH_PORT")
    alerting = stack.start("alerting", "services.alerting", "CIVIC_ALERTING_PORT")
    downstream = {"CIVIC_SEARCH_TARGET": search, "CIVIC_ALERTING_TARGET": alerting}
    # Nothing listens on this inference port yet: the post stays in the spool across the restart.
    ingestion = stack.start(
        "ingestion-1", "services.ingestion", "CIVIC_INGESTION_PORT",
        {**downstream, "CIVIC_INFERENCE_TARGET": f"127.0.0.1:{free_port()}"},
    )
    post_id = ingest_one(ingestion, tenant)
    stack.stop(stack.processes[-1])

    inference = stack.start("inference", "inference", "CIVIC_INFERENCE_PORT")
    ingestion = stack.start(
        "ingestion-2", "services.ingestion", "CIVIC_INGESTION_PORT",
        {**downstream, "CIVIC_INFERENCE_TARGET": inference},
    )
    otlp_receiver.wait_for("forwarded post", lambda: forwarded(ingestion))

    def has(name: str) -> bool:
        return any(span["name"] == name for span in otlp_receiver.spans())

    otlp_receiver.wait_for("alerting span", lambda: has("evaluate_posts") and has("model.enrich"))
    ingest_span = next(s for s in otlp_receiver.spans() if post_id in s["attributes"].get("civic.post_ids", []))
    root = ["ingestion", "ingestion"], [INGEST, "ingest_posts"]
    trace: dict[str, dict[str, Any]] = {}

    def ends_in_ingest(span: dict[str, Any]) -> bool:
        tail = chain(trace, span)[-2:]
        return [s for s, _ in tail] == root[0] and [n for _, n in tail] == list(reversed(root[1]))

    def every_hop_exported() -> bool:
        """Each process exports in its own batches: wait until every leaf's parents have arrived too."""
        trace.clear()
        trace.update({s["span_id"]: s for s in otlp_receiver.spans() if s["trace_id"] == ingest_span["trace_id"]})
        leaves = [s for s in trace.values() if s["name"] in {"model.enrich", "evaluate_posts"}]
        leaves += [s for s in trace.values() if s["attributes"].get("db.system") == "elasticsearch"]
        return len(leaves) >= 3 and all(ends_in_ingest(leaf) for leaf in leaves)

    otlp_receiver.wait_for("every hop's spans", every_hop_exported, timeout_s=30)

    # Every hop of the restarted forwarder's work, each with its parent chain back to the ingest call.
    model = next(s for s in trace.values() if s["name"] == "model.enrich")
    assert chain(trace, model)[:4] == [
        ("inference", "model.enrich"), ("inference", ENRICH), ("ingestion", ENRICH),
        ("ingestion", "forward_posts"),
    ]
    assert ends_in_ingest(model)
    assert model["attributes"]["civic.batch.size"] == 1
    assert model["attributes"]["civic.device"] in {"cpu", "cuda"}
    es = [s for s in trace.values() if s["attributes"].get("db.system") == "elasticsearch"]
    bulk = next(s for s in es if s["name"] == "bulk")
    assert ("search", "index_posts") in chain(trace, bulk)
    assert ("search", INDEX) in chain(trace, bulk) and ("ingestion", INDEX) in chain(trace, bulk)
    assert ends_in_ingest(bulk)
    evaluate = next(s for s in trace.values() if s["name"] == "evaluate_posts")
    assert chain(trace, evaluate)[:3] == [
        ("alerting", "evaluate_posts"), ("alerting", EVALUATE), ("ingestion", EVALUATE)
    ]
    assert ends_in_ingest(evaluate)
    server_enrich = next(s for s in trace.values() if s["name"] == ENRICH and s["kind"] == "server")
    assert server_enrich["attributes"]["rpc.system"] == "grpc"
    assert server_enrich["attributes"]["civic.tenant"] == tenant

    def metric_names() -> set[tuple[str, str]]:
        return {(m["service"], m["name"]) for m in otlp_receiver.metrics()}

    wanted = {
        ("ingestion", "civic.posts"), ("ingestion", "civic.spool.depth"), ("ingestion", "civic.batch.size"),
        ("inference", "civic.inference.duration"), ("inference", "civic.batch.size"),
    }
    otlp_receiver.wait_for("metrics", lambda: wanted <= metric_names(), timeout_s=30)

    def stages() -> set[str]:
        return {
            attribute["value"]["stringValue"]
            for m in otlp_receiver.metrics() if m["name"] == "civic.posts"
            for point in m["sum"]["dataPoints"] for attribute in point["attributes"]
            if attribute["key"] == "civic.stage"
        }

    otlp_receiver.wait_for("post counts", lambda: {"ingested", "enriched", "indexed"} <= stages(), timeout_s=30)
