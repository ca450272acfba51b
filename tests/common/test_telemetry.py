"""Telemetry set-up from OTEL_* variables, the local OTLP receiver, and `civic trace`'s span trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from rich.console import Console

from civic.listening.v1 import post_pb2
from services.cli.trace import post_traces, trace_trees
from services.common import telemetry
from services.devstack.launch import free_port
from tests.fixtures.otlp import Received


def run_python(code: str, env: dict[str, str]) -> str:
    """Runs code in a fresh interpreter: providers are global and can be set only once per process."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env={**clean, **env},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_an_endpoint_nothing_is_installed() -> None:
    out = run_python(
        """
        import grpc, logging
        from services.common import telemetry
        telemetry.setup("probe")
        chan = grpc.insecure_channel("127.0.0.1:1")
        print(telemetry.tracing(), telemetry.server_interceptors(), telemetry.instrument_channel(chan) is chan)
        logging.getLogger("probe").warning("hello")
        """,
        {},
    )
    assert out.strip() == "False [] True"


def test_logs_are_json_with_trace_and_span_ids(otlp_receiver: Received) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(
            """
            import logging
            from services.common import telemetry
            telemetry.setup("probe")
            with telemetry.tracer("probe").start_as_current_span("work") as span:
                logging.getLogger("probe").warning("inside")
                print(f"{span.get_span_context().trace_id:032x}")
            """
        )],
        env={**os.environ, **otlp_receiver.env()}, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stderr.strip().splitlines()[-1])
    assert entry["message"] == "inside" and entry["service"] == "probe"
    assert entry["trace_id"] == done.stdout.strip() and len(entry["span_id"]) == 16
    otlp_receiver.wait_for("the span", lambda: any(s["name"] == "work" for s in otlp_receiver.spans()))
    span = next(s for s in otlp_receiver.spans() if s["name"] == "work")
    assert span["trace_id"] == entry["trace_id"] and span["service"] == "probe"


def test_prometheus_scrape_endpoint_serves_the_metrics() -> None:
    port = free_port()
    out = run_python(
        """
        import urllib.request
        from types import SimpleNamespace
        from services.common import telemetry
        telemetry.setup("probe")
        telemetry.count_posts("ingested", [SimpleNamespace(id="1", tenant="city-a", channel="rss")] * 3)
        telemetry.count_alert("city-a", "floods", "SEVERITY_CRITICAL", 82.5)
        print(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
        """.replace("{port}", str(port)),
        {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
         "OTEL_EXPORTER_PROMETHEUS_PORT": str(port)},
    )
    posts = next(line for line in out.splitlines() if line.startswith("civic_posts"))
    assert 'civic_stage="ingested"' in posts and 'civic_tenant="city-a"' in posts and posts.endswith(" 3.0")
    alerts = next(line for line in out.splitlines() if line.startswith("civic_alerts"))
    assert 'civic_priority="high"' in alerts and 'civic_rule_id="floods"' in alerts


def test_receiver_stores_spans_and_trace_trees_follow_links(otlp_receiver: Received) -> None:
    """Spans exported over real OTLP/gRPC; a batch that continued another post's trace links to ours."""
    provider = TracerProvider(resource=Resource({"service.name": "ingestion"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_receiver.receiver.endpoint)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("ingest_posts", attributes={"civic.post_ids": ["mine"]}) as mine:
        pass
    with (
        tracer.start_as_current_span("ingest_posts", attributes={"civic.post_ids": ["other"]}),
        tracer.start_as_current_span("forward_posts", links=[trace.Link(mine.get_span_context())]),
        tracer.start_as_current_span("model.enrich", attributes={"civic.batch.size": 2}),
    ):
        pass
    provider.shutdown()

    spans = otlp_receiver.spans()
    assert len(spans) == 4
    assert post_traces(spans, "mine") == [f"{mine.get_span_context().trace_id:032x}"]
    console = Console(record=True, width=200)
    for tree in trace_trees(spans, "mine"):
        console.print(tree)
    text = console.export_text()
    assert text.index("ingest_posts") < text.index("linked from trace") < text.index("forward_posts")
    assert text.index("forward_posts") < text.index("model.enrich") and "size=2" in text
    assert " ms" in text


def test_batch_attributes_name_the_posts_tenant_and_channels() -> None:
    posts = [post_pb2.Post(id=str(n), tenant="city-a", channel=c) for n, c in enumerate(["rss", "reddit"])]
    attributes = telemetry.batch_attributes(posts)
    assert attributes == {
        "civic.batch.size": 2, "civic.post_ids": ["0", "1"], "civic.tenant": "city-a",
        "civic.channels": ["reddit", "rss"],
    }
    assert telemetry.rpc_attributes("/civic.listening.v1.SearchService/IndexPosts") == {
        "rpc.system": "grpc", "rpc.service": "civic.listening.v1.SearchService", "rpc.method": "IndexPosts",
    }
