"""One way to run a gRPC server: health checking, reflection, error mapping, security and clean
shutdown; and one way to open a client channel (TLS and the bearer token included).

Every service process goes through here so that operators see the same behaviour everywhere.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import telemetry, tls
from services.common.auth import read_token
from services.common.deadlines import ClientDeadlines, ServerDeadlines
from services.common.errors import ResourceExhausted
from services.common.security import Security, UndecodableRequests, retry_status
from services.common.settings import Settings
from services.common.status import MAPPED, status_of

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

def rpc_errors(method: F) -> F:
    """Turns domain errors raised by a servicer method into the matching gRPC status."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except MAPPED as exc:
            if isinstance(exc, ResourceExhausted) and exc.retry_after_s is not None:
                context.abort_with_status(retry_status(str(exc), exc.retry_after_s))
            context.abort(status_of(exc), str(exc))

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
        registered = list(register)
        self.security = Security.from_settings(settings, ",".join(name for _, _, name in registered))
        interceptors = [*telemetry.server_interceptors(), UndecodableRequests(), ServerDeadlines()]
        if self.security is not None:
            interceptors.append(self.security.interceptor)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.grpc_workers),
            options=options,
            interceptors=interceptors,
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        for add, servicer, full_name in registered:
            add(servicer, self.server)
            names.append(full_name)
            self.health.set(full_name, health_pb2.HealthCheckResponse.SERVING)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        if settings.reflection:
            reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], self.server)
        address = f"{settings.bind_host}:{port}"
        if tls.server_tls(settings):
            self.port = self.server.add_secure_port(address, tls.server_credentials(settings))
        else:
            self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {address}")
        self.health_server = self._health_only(settings) if settings.health_port else None

    def _health_only(self, settings: Settings) -> grpc.Server:
        """A plaintext server with nothing but health, for probes that cannot speak TLS (Kubernetes)."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if server.add_insecure_port(f"{settings.bind_host}:{settings.health_port}") == 0:
            raise RuntimeError(f"cannot listen on health port {settings.health_port}")
        return server

    def start(self) -> GrpcServer:
        self.server.start()
        if self.health_server is not None:
            self.health_server.start()
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        if self.health_server is not None:
            self.health_server.stop(0)
        if self.security is not None:
            self.security.close()

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


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call of a channel that does not carry its own
    (a gateway forwarding its viewer's token keeps it)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or [])
        if any(key == "authorization" for key, _ in metadata):
            return details
        return details._replace(metadata=[*metadata, self._header])  # type: ignore[attr-defined, no-any-return]

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


# A target that names several replicas (`ipv4:host:port,host:port`, or a `dns:///` name of a headless
# Service) spreads calls over every ready one, and a call never waits on a dead replica while another
# serves; one address behaves as before.
ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def client_options(settings: Settings, target: str) -> list[tuple[str, int | str]]:
    """The options of every client channel, sync or asyncio: the servers' message limits, calls spread
    over every address the target resolves to and, with TLS, the server name certificates are checked
    against."""
    options: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.service_config", ROUND_ROBIN),
    ]
    if tls.client_tls(settings, target) and settings.tls_server_name:
        options.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    return options


def channel(target: str, settings: Settings) -> grpc.Channel:
    """A client channel with the same message limits as the servers, TLS (and a client certificate)
    when configured, the bearer token of settings on every call, at most the deadline left to the call
    being served (services/common/deadlines.py), traced when tracing is on."""
    options = client_options(settings, target)
    if tls.client_tls(settings, target):
        chan = grpc.secure_channel(target, tls.channel_credentials(settings), options=options)
    else:
        chan = grpc.insecure_channel(target, options=options)
    token = read_token(settings)
    interceptors: list[Any] = [ClientDeadlines()]
    if token:
        interceptors.append(_BearerToken(token))
    return telemetry.instrument_channel(grpc.intercept_channel(chan, *interceptors))
