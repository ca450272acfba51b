"""A small OTLP/gRPC receiver on loopback: where the local stack's traces and metrics go by default.

`civic up` starts it when no OTLP endpoint is configured, so that `civic trace POST_ID` can show a
post's journey without a collector. It implements the collector's TraceService and MetricsService and
appends what it receives as JSON lines (one span, or one metric of one export, per line) under
`<run dir>/telemetry/`; production deployments point OTEL_EXPORTER_OTLP_ENDPOINT at a real collector.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from services.common.grpc_server import GrpcServer
from services.common.settings import Settings

log = logging.getLogger(__name__)

SPANS_FILE = "spans.jsonl"
METRICS_FILE = "metrics.jsonl"
_TRACE_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
_METRICS_SERVICE = metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name
_KINDS = {value: name.removeprefix("SPAN_KIND_").lower() for name, value in trace_pb2.Span.SpanKind.items()}


def store_dir(settings: Settings) -> Path:
    return settings.run_dir / "telemetry"


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind) if kind else None


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


def span_record(span: trace_pb2.Span, resource: dict[str, Any]) -> dict[str, Any]:
    """A span as plain JSON: hex ids, nanosecond times, decoded attributes and links."""
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": _KINDS.get(span.kind, "unspecified"),
        "service": resource.get("service.name", ""),
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
        "status": trace_pb2.Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_").lower(),
        "attributes": attributes(span.attributes),
        "links": [{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()} for link in span.links],
    }


def load(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a line still being written is skipped."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class _Store:
    """Appends JSON lines; one lock, because exports arrive on several server threads."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._files: dict[str, IO[str]] = {
            name: (directory / name).open("a", encoding="utf-8") for name in (SPANS_FILE, METRICS_FILE)
        }

    def append(self, name: str, records: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        with self._lock:
            self._files[name].write(lines)
            self._files[name].flush()

    def close(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: _Store) -> None:
        self.store = store

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.store.append(SPANS_FILE, _spans(request))
        return trace_service_pb2.ExportTraceServiceResponse()


def _spans(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterator[dict[str, Any]]:
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield span_record(span, resource)


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, store: _Store) -> None:
        self.store = store

    def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: grpc.ServicerContext
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self.store.append(METRICS_FILE, _metrics(request))
        return metrics_service_pb2.ExportMetricsServiceResponse()


def _metrics(request: metrics_service_pb2.ExportMetricsServiceRequest) -> Iterator[dict[str, Any]]:
    for resource_metrics in request.resource_metrics:
        service = attributes(resource_metrics.resource.attributes).get("service.name", "")
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = MessageToDict(metric)
                data["service"] = service
                yield data


class OtlpReceiver:
    """A started receiver; port 0 picks a free one (see .port)."""

    def __init__(self, settings: Settings, directory: Path, port: int) -> None:
        self.directory = directory
        self._store = _Store(directory)
        self._server = GrpcServer(
            settings,
            port,
            [
                (trace_service_pb2_grpc.add_TraceServiceServicer_to_server, _TraceService(self._store),
                 _TRACE_SERVICE),
                (metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server,
                 _MetricsService(self._store), _METRICS_SERVICE),
            ],
        ).start()
        self.port = self._server.port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve_until_signal(self) -> None:
        self._server.serve_until_signal(on_stop=self._store.close)

    def stop(self) -> None:
        self._server.stop(grace_s=1.0)
        self._store.close()


def main() -> None:
    """`python -m services.devstack.otlp_receiver`: serves on settings.otlp_receiver_port."""
    # The receiver must not trace its own Export calls into itself.
    os.environ["OTEL_SDK_DISABLED"] = "true"
    from services.common import telemetry
    from services.common.settings import get_settings

    settings = get_settings()
    telemetry.setup("otlp-receiver", settings.log_level)
    receiver = OtlpReceiver(settings, store_dir(settings), settings.otlp_receiver_port)
    log.info("storing telemetry under %s", receiver.directory)
    receiver.serve_until_signal()


if __name__ == "__main__":
    main()
