"""Telemetry for every process, set up once: structured logs always, traces and metrics when configured.

Configured only by the standard OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT and its per-signal
variants, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
OTEL_METRIC_EXPORT_INTERVAL, OTEL_METRICS_EXPORTER=otlp,prometheus with OTEL_EXPORTER_PROMETHEUS_HOST/PORT,
OTEL_SDK_DISABLED); no other module configures telemetry. Without an endpoint nothing is exported and
the gRPC interceptors are not even installed, so an unconfigured process pays only for no-op spans.

Trace context crosses process boundaries as W3C traceparent strings: in gRPC metadata (the
instrumentation's interceptors), in the ingestion spool (so work done after a restart joins the
post's trace) and as an argument of Ray Serve handle calls (so a batch merged from many callers links
back to each of them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import grpc
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

METER_NAME = "civic-listening"
# Spans name at most this many posts; a larger batch is still counted by civic.batch.size.
MAX_POST_IDS = 1000
_PROPAGATOR = TraceContextTextMapPropagator()
_state = {"configured": False, "tracing": False, "service": ""}


# --- logs ----------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the active trace and span ids when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": _state["service"],
            "logger": record.name,
            "message": record.getMessage(),
        }
        if span.is_valid:
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# --- set-up --------------------------------------------------------------------------------------


def _exporters(signal: str) -> set[str]:
    names = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp")
    return {name.strip().lower() for name in names.split(",") if name.strip()}


def _otlp_wanted(signal: str) -> bool:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    )
    return bool(endpoint) and "otlp" in _exporters(signal)


def setup(service_name: str, level: str = "INFO") -> None:
    """Called first thing by each process's entry point (and by each Ray Serve replica)."""
    _state["service"] = os.environ.get("OTEL_SERVICE_NAME") or service_name
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if _state["configured"] or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    _state["configured"] = True
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    if _otlp_wanted("traces"):
        _start_tracing(resource)
    _start_metrics(resource)


def _start_tracing(resource: Any) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The sampler comes from OTEL_TRACES_SAMPLER (parent-based, always on, by default).
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _state["tracing"] = True


def _start_metrics(resource: Any) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

    readers: list[MetricReader] = []
    if _otlp_wanted("metrics"):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if "prometheus" in _exporters("metrics"):
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        host = os.environ.get("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost")
        port = int(os.environ.get("OTEL_EXPORTER_PROMETHEUS_PORT", "9464"))
        start_http_server(port=port, addr=host)
        readers.append(PrometheusMetricReader())
        log.info("prometheus metrics on http://%s:%d/metrics", host, port)
    if readers:
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def tracing() -> bool:
    """True when this process exports spans."""
    return bool(_state["tracing"])


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


# --- trace context -------------------------------------------------------------------------------


def traceparent() -> str:
    """The W3C traceparent of the active span ("" when none), to carry a trace where gRPC cannot."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def span_context(traceparent_: str) -> trace.SpanContext | None:
    if not traceparent_:
        return None
    context = _PROPAGATOR.extract({"traceparent": traceparent_})
    found = trace.get_current_span(context).get_span_context()
    return found if found.is_valid else None


@contextlib.contextmanager
def span_joining(
    name: str,
    traceparents: Iterable[str],
    attributes: dict[str, Any] | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    tracer_name: str = __name__,
) -> Iterator[trace.Span]:
    """A span for work done on behalf of several earlier traces (a batch, a spooled post).

    It continues the first of them, so that a post's trace shows the work, and links to every other
    one, so that no caller loses track of the batch that served it.
    """
    contexts: list[trace.SpanContext] = []
    for tp in traceparents:
        found = span_context(tp)
        if found is not None and all(found.span_id != c.span_id for c in contexts):
            contexts.append(found)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0])) if contexts else None
    links = [trace.Link(c) for c in contexts[1:]]
    with tracer(tracer_name).start_as_current_span(
        name, context=parent, kind=kind, links=links, attributes=attributes
    ) as span:
        yield span


def rpc_attributes(full_method: str) -> dict[str, Any]:
    """rpc.* semantic-convention attributes for "/package.Service/Method"."""
    service, _, method = full_method.strip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def server_span(full_method: str, traceparent_: str | None) -> contextlib.AbstractContextManager[trace.Span]:
    """A SERVER span continuing the caller's traceparent, where no interceptor can be installed
    (Ray Serve's gRPC proxy hands the metadata to the deployment instead); named like the
    instrumentation's spans, after the full method."""
    return span_joining(full_method, [traceparent_ or ""], rpc_attributes(full_method), trace.SpanKind.SERVER)


@contextlib.contextmanager
def model_batch(
    task: str, traceparents: Sequence[str], size: int, model: str, device: str
) -> Iterator[trace.Span]:
    """One model pass over a batch merged from several callers: a span linked to each caller's
    span, plus the batch size and latency histograms."""
    attributes = {"civic.batch.size": size, "civic.model": model, "civic.device": device, "civic.task": task}
    started = time.perf_counter()
    with span_joining(f"model.{task}", traceparents, attributes) as span:
        yield span
    record_batch("inference", size, **{"civic.task": task})
    record_inference(time.perf_counter() - started, model, device, task)


# --- gRPC ----------------------------------------------------------------------------------------


def _traced_call(details: Any) -> bool:
    """Health checks and reflection would only bury the spans that matter."""
    method = getattr(details, "method", "")
    method = method.decode() if isinstance(method, bytes) else str(method)
    return not method.startswith(("/grpc.health.", "/grpc.reflection."))


def server_interceptors() -> list[grpc.ServerInterceptor]:
    """SERVER spans continuing the caller's traceparent; none at all when tracing is off."""
    if not tracing():
        return []
    from opentelemetry.instrumentation.grpc import server_interceptor

    return [server_interceptor(filter_=_traced_call)]


def instrument_channel(channel: grpc.Channel) -> grpc.Channel:
    """CLIENT spans, and the traceparent sent in the call's metadata; the plain channel when off."""
    if not tracing():
        return channel
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    intercepted: grpc.Channel = intercept_channel(channel, client_interceptor(filter_=_traced_call))
    return intercepted


# --- attributes of batches of posts --------------------------------------------------------------


class PostLike(Protocol):
    id: str
    tenant: str
    channel: str


def batch_attributes(posts: Sequence[PostLike]) -> dict[str, Any]:
    """What an operator filters on: the batch size, the post ids, and the tenant(s) and channel(s)."""
    tenants = sorted({post.tenant for post in posts})
    channels = sorted({post.channel for post in posts})
    attributes: dict[str, Any] = {
        "civic.batch.size": len(posts),
        "civic.post_ids": [post.id for post in posts[:MAX_POST_IDS]],
    }
    attributes.update({"civic.tenant": tenants[0]} if len(tenants) == 1 else {"civic.tenants": tenants})
    attributes.update({"civic.channel": channels[0]} if len(channels) == 1 else {"civic.channels": channels})
    return attributes


def describe_batch(span: trace.Span, posts: Sequence[PostLike]) -> None:
    """Puts batch_attributes on span, only when the span is recorded (they cost a pass over the posts)."""
    if span.is_recording():
        span.set_attributes(batch_attributes(posts))


# --- metrics -------------------------------------------------------------------------------------

# Created on the API's proxy meter: they start recording once setup() installs a provider.
_meter = metrics.get_meter(METER_NAME)
_posts = _meter.create_counter(
    "civic.posts", unit="{post}",
    description="Posts by pipeline stage: ingested, rejected, enriched, indexed, dead_lettered.",
)
_batch_size = _meter.create_histogram(
    "civic.batch.size", unit="{post}", description="Posts or texts per batch, by stage.",
    explicit_bucket_boundaries_advisory=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
)
_inference_duration = _meter.create_histogram(
    "civic.inference.duration", unit="s", description="Time of one model pass over a batch.",
    explicit_bucket_boundaries_advisory=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
)
_alerts = _meter.create_counter(
    "civic.alerts", unit="{alert}", description="Alerts raised, by rule and priority."
)
_forward_failures = _meter.create_counter(
    "civic.forward.failures", unit="{call}",
    description="Failed downstream calls of the ingestion forwarder, by stage and status code.",
)


def count_posts(stage: str, posts: Iterable[PostLike]) -> None:
    for (tenant, channel), n in Counter((p.tenant, p.channel) for p in posts).items():
        _posts.add(n, {"civic.stage": stage, "civic.tenant": tenant, "civic.channel": channel})


def count_rejected(n: int) -> None:
    """Rejected posts failed validation, so their tenant and channel cannot be trusted as labels."""
    if n:
        _posts.add(n, {"civic.stage": "rejected"})


def count_dead_lettered(n: int) -> None:
    """Posts a downstream refused for good: they stay in the spool as failed, with the reason."""
    if n:
        _posts.add(n, {"civic.stage": "dead_lettered"})


def count_forward_failure(stage: str, code: str) -> None:
    _forward_failures.add(1, {"civic.stage": stage, "civic.code": code})


def record_batch(stage: str, size: int, **attributes: str) -> None:
    _batch_size.record(size, {"civic.stage": stage, **attributes})


def record_inference(seconds: float, model: str, device: str, task: str) -> None:
    _inference_duration.record(
        seconds, {"civic.model": model, "civic.device": device, "civic.task": task}
    )


def priority_band(priority: float) -> str:
    """The 0-100 priority score cut into bands, so that the metric keeps few label values."""
    return "high" if priority >= 70 else "medium" if priority >= 40 else "low"


def count_alert(tenant: str, rule_id: str, severity: str, priority: float) -> None:
    _alerts.add(
        1,
        {"civic.tenant": tenant, "civic.rule_id": rule_id, "civic.severity": severity,
         "civic.priority": priority_band(priority)},
    )


def observe_spool_depth(pending: Callable[[], int]) -> None:
    """Reports the posts waiting in the spool each time metrics are collected."""

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(pending())

    _meter.create_observable_gauge(
        "civic.spool.depth", callbacks=[observe], unit="{post}",
        description="Accepted posts not yet forwarded downstream.",
    )


def observe_forward_stall(stalled_s: Callable[[], float]) -> None:
    """Reports how long the forwarder has been stalled each time metrics are collected."""

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(stalled_s())

    _meter.create_observable_gauge(
        "civic.forward.stalled", callbacks=[observe], unit="s",
        description="Seconds since the batch at the head of the spool failed past the retry bound without "
                    "going through since; 0 while posts flow.",
    )
