"""The gRPC face of ingestion: hands requests to the domain and maps its errors to status codes."""

from __future__ import annotations

import grpc

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.common.grpc_server import GrpcServer, rpc_errors
from services.common.settings import Settings
from services.ingestion.service import Ingestion

SERVICE_NAME = ingestion_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name


class IngestionServicer(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(self, ingestion: Ingestion) -> None:
        self.ingestion = ingestion

    @rpc_errors
    def IngestPosts(
        self, request: ingestion_pb2.IngestPostsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.IngestPostsResponse:
        return self.ingestion.ingest(request.posts)

    @rpc_errors
    def GetIngestionStats(
        self, request: ingestion_pb2.GetIngestionStatsRequest, context: grpc.ServicerContext
    ) -> ingestion_pb2.GetIngestionStatsResponse:
        return self.ingestion.stats()


def build_server(settings: Settings, ingestion: Ingestion, port: int | None = None) -> GrpcServer:
    """An unstarted server for the ingestion domain; port 0 picks a free one."""
    return GrpcServer(
        settings,
        settings.ingestion_port if port is None else port,
        [(ingestion_pb2_grpc.add_IngestionServiceServicer_to_server, IngestionServicer(ingestion), SERVICE_NAME)],
    )
