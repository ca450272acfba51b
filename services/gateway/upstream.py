"""The gateway's clients of the gRPC services, and the viewer whose credential every call carries.

The gateway holds no credential of its own: each call carries the viewer's bearer token as the
`authorization` metadata, so the services decide what the viewer may see. Without a token (a stack
without authentication) the viewer names one agency per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from civic.listening.v1 import alerting_pb2_grpc, ingestion_pb2_grpc, search_pb2_grpc, topics_pb2_grpc
from services.common import telemetry, tls
from services.common.settings import Settings
from services.common.validation import TENANT_PATTERN

TENANT_HEADER = "X-Civic-Tenant"


class NoViewer(Exception):
    """The request names neither an agency nor a credential; the message says what to send."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the agency they see ("" lets the services take it from the token) and the
    metadata that carries their token."""

    tenant: str
    metadata: tuple[tuple[str, str], ...]


def viewer_from_headers(authorization: str, tenant: str) -> Viewer:
    """The viewer of a request, from its Authorization and X-Civic-Tenant headers."""
    authorization, tenant = authorization.strip(), tenant.strip()
    if authorization and not authorization.lower().startswith("bearer "):
        raise NoViewer("The Authorization header must be 'Bearer <token>'.")
    if tenant and not TENANT_PATTERN.fullmatch(tenant):
        raise NoViewer(f"'{tenant[:70]}' is not an agency name (lower-case letters, digits, '-' or '_').")
    if not authorization and not tenant:
        raise NoViewer(f"Choose an agency (the {TENANT_HEADER} header) or sign in with an access token.")
    metadata = (("authorization", authorization),) if authorization else ()
    return Viewer(tenant=tenant, metadata=metadata)


@dataclass
class Upstreams:
    """Stubs of the services the dashboard reads and acts through (topics are served by search)."""

    search: search_pb2_grpc.SearchServiceStub
    topics: topics_pb2_grpc.TopicServiceStub
    alerting: alerting_pb2_grpc.AlertingServiceStub
    ingestion: ingestion_pb2_grpc.IngestionServiceStub
    timeout_s: float


def _channel(target: str, settings: Settings) -> grpc.aio.Channel:
    """TLS as the other clients of the stack use it, but never the process's own bearer token:
    every call carries the viewer's."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    interceptors = None
    if telemetry.tracing():
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        interceptors = aio_client_interceptors()
    if tls.client_tls(settings, target):
        return grpc.aio.secure_channel(target, tls.channel_credentials(settings), options=options,
                                       interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Upstreams]:
    """Channels opened in the running event loop and closed with it."""
    channels = {name: _channel(target, settings) for name, target in (
        ("search", settings.search_target),
        ("alerting", settings.alerting_target),
        ("ingestion", settings.ingestion_target),
    )}
    try:
        yield Upstreams(
            search=search_pb2_grpc.SearchServiceStub(channels["search"]),
            topics=topics_pb2_grpc.TopicServiceStub(channels["search"]),
            alerting=alerting_pb2_grpc.AlertingServiceStub(channels["alerting"]),
            ingestion=ingestion_pb2_grpc.IngestionServiceStub(channels["ingestion"]),
            timeout_s=settings.rpc_timeout_s,
        )
    finally:
        for channel in channels.values():
            await channel.close()
