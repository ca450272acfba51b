"""The gRPC face of ingestion: hands requests to the domain and maps its errors to status codes."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.common.errors import InvalidArgument, Unavailable
from services.common.grpc_server import GrpcServer, rpc_errors
from services.common.settings import Settings
from services.common.validation import require_tenant
from services.ingestion.dead_letters import list_failed, replay_failed
from services.ingestion.forwarder import Forwarder
from services.ingestion.service import Ingestion
from services.ingestion.sources import ACTIVE, PAUSED, SourceStore

SERVICE_NAME = ingestion_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name
FORWARDER_HEALTH = f"{SERVICE_NAME}/forwarder"


def _require_id(source_id: str) -> str:
    if not source_id:
        raise InvalidArgument("id", "must not be empty")
    return source_id


class IngestionServicer(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(self, ingestion: Ingestion, sources: SourceStore | None = None) -> None:
        self.ingestion = ingestion
        self._sources = sources

    @property
    def sources(self) -> SourceStore:
        if self._sources is None:
            raise Unavailable("this ingestion server does not manage sources")
        return self._sources

    @rpc_errors
    def IngestPosts(
        self, request: ingestion_pb2.IngestPostsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.IngestPostsResponse:
        return self.ingestion.ingest(request.posts)

    @rpc_errors
    def DeletePosts(
        self, request: ingestion_pb2.DeletePostsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.DeletePostsResponse:
        return self.ingestion.delete(request.tenant, request.posts)

    @rpc_errors
    def GetIngestionStats(
        self, request: ingestion_pb2.GetIngestionStatsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.GetIngestionStatsResponse:
        return self.ingestion.stats(request.tenant)

    @rpc_errors
    def CreateSource(
        self, request: ingestion_pb2.CreateSourceRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.CreateSourceResponse:
        return ingestion_pb2.CreateSourceResponse(source=self.sources.create(request.spec))

    @rpc_errors
    def ListSources(
        self, request: ingestion_pb2.ListSourcesRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.ListSourcesResponse:
        return ingestion_pb2.ListSourcesResponse(sources=self.sources.list_sources(require_tenant(request.tenant)))

    @rpc_errors
    def PauseSource(
        self, request: ingestion_pb2.PauseSourceRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.PauseSourceResponse:
        source = self.sources.set_state(require_tenant(request.tenant), _require_id(request.id), PAUSED)
        return ingestion_pb2.PauseSourceResponse(source=source)

    @rpc_errors
    def ResumeSource(
        self, request: ingestion_pb2.ResumeSourceRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.ResumeSourceResponse:
        source = self.sources.set_state(require_tenant(request.tenant), _require_id(request.id), ACTIVE)
        return ingestion_pb2.ResumeSourceResponse(source=source)

    @rpc_errors
    def DeleteSource(
        self, request: ingestion_pb2.DeleteSourceRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.DeleteSourceResponse:
        self.sources.delete(require_tenant(request.tenant), _require_id(request.id))
        return ingestion_pb2.DeleteSourceResponse()

    @rpc_errors
    def GetSourceStatus(
        self, request: ingestion_pb2.GetSourceStatusRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.GetSourceStatusResponse:
        source = self.sources.get(require_tenant(request.tenant), _require_id(request.id))
        return ingestion_pb2.GetSourceStatusResponse(source=source)


    @rpc_errors
    def ListFailedPosts(
        self, request: ingestion_pb2.ListFailedPostsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.ListFailedPostsResponse:
        return list_failed(self.ingestion.spool, request)

    @rpc_errors
    def ReplayFailedPosts(
        self, request: ingestion_pb2.ReplayFailedPostsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.ReplayFailedPostsResponse:
        return replay_failed(self.ingestion.spool, request)


def report_forwarder_health(server: GrpcServer, forwarder: Forwarder) -> None:
    """The forwarder's own health entry, NOT_SERVING while it is stalled; the server's overall
    health stays SERVING (ingestion still accepts posts, durably), so probes do not restart it."""
    status = health_pb2.HealthCheckResponse

    def follow(stalled: bool) -> None:
        server.health.set(FORWARDER_HEALTH, status.NOT_SERVING if stalled else status.SERVING)

    follow(forwarder.stalled_since() is not None)
    forwarder.on_stall(follow)


def build_server(
    settings: Settings, ingestion: Ingestion, port: int | None = None, sources: SourceStore | None = None
) -> GrpcServer:
    """An unstarted server for the ingestion domain; port 0 picks a free one."""
    return GrpcServer(
        settings,
        settings.ingestion_port if port is None else port,
        [(
            ingestion_pb2_grpc.add_IngestionServiceServicer_to_server,
            IngestionServicer(ingestion, sources),
            SERVICE_NAME,
        )],
    )
