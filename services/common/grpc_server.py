"""One way to run a gRPC server: health checking, reflection, error mapping and clean shutdown.

Every service process goes through here so that operators see the same behaviour everywhere.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import telemetry
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted, Unavailable
from services.common.settings import Settings

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_STATUS_OF: list[tuple[type[Exception], grpc.StatusCode]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def rpc_errors(method: F) -> F:
    """Turns domain errors raised by a servicer method into the matching gRPC status."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except tuple(exc for exc, _ in _STATUS_OF) as exc:
            code = next(code for kind, code in _STATUS_OF if isinstance(exc, kind))
            context.abort(code, str(exc))

    return wrapper  # type: ignore[return-value]


class GrpcServer:
    """A started gRPC server with SERVING health for its services."""

    def __init__(
        self,
        settings: Settings,
        port: int,
        register: Iterable[tuple[Callable[[Any, grpc.Server], None], Any, str]],
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.grpc_workers),
            options=options,
            interceptors=telemetry.server_interceptors(),
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        for add, servicer, full_name in register:
            add(servicer, self.server)
            names.append(full_name)
            self.health.set(full_name, health_pb2.HealthCheckResponse.SERVING)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(names, self.server)
        address = f"{settings.bind_host}:{port}"
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {address}")

    def start(self) -> GrpcServer:
        self.server.start()
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()

    def serve_until_signal(self, on_stop: Callable[[], None] | None = None) -> None:
        """Blocks until SIGTERM/SIGINT, then stops accepting calls and drains the running ones."""
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        log.info("serving on port %d", self.port)
        stopped.wait()
        log.info("shutting down")
        self.stop()
        if on_stop is not None:
            on_stop()


def channel(target: str, settings: Settings) -> grpc.Channel:
    """A client channel with the same message limits as the servers, traced when tracing is on."""
    return telemetry.instrument_channel(
        grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
            ],
        )
    )
