"""The gRPC face of alerting: hands requests to the domain and maps its errors to status codes."""

from __future__ import annotations

import grpc

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc
from services.alerting.service import Alerting
from services.common.errors import InvalidArgument
from services.common.grpc_server import GrpcServer, rpc_errors
from services.common.settings import Settings

SERVICE_NAME = alerting_pb2.DESCRIPTOR.services_by_name["AlertingService"].full_name


class AlertingServicer(alerting_pb2_grpc.AlertingServiceServicer):
    def __init__(self, alerting: Alerting) -> None:
        self.alerting = alerting

    @rpc_errors
    def EvaluatePosts(
        self, request: alerting_pb2.EvaluatePostsRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.EvaluatePostsResponse:
        fired = self.alerting.evaluate(request.posts)
        return alerting_pb2.EvaluatePostsResponse(evaluated=len(request.posts), fired=fired)

    @rpc_errors
    def ListAlerts(
        self, request: alerting_pb2.ListAlertsRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.ListAlertsResponse:
        alerts = self.alerting.list_alerts(request.tenant, request.limit, request.state)
        return alerting_pb2.ListAlertsResponse(alerts=alerts)

    @rpc_errors
    def PutRule(
        self, request: alerting_pb2.PutRuleRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.PutRuleResponse:
        if not request.HasField("rule"):
            raise InvalidArgument("rule", "is required")
        return alerting_pb2.PutRuleResponse(rule=self.alerting.put_rule(request.rule))

    @rpc_errors
    def ListRules(
        self, request: alerting_pb2.ListRulesRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.ListRulesResponse:
        return alerting_pb2.ListRulesResponse(rules=self.alerting.list_rules(request.tenant))

    @rpc_errors
    def DeleteRule(
        self, request: alerting_pb2.DeleteRuleRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.DeleteRuleResponse:
        self.alerting.delete_rule(request.tenant, request.id)
        return alerting_pb2.DeleteRuleResponse()


def build_server(settings: Settings, alerting: Alerting, port: int | None = None) -> GrpcServer:
    """An unstarted server for the alerting domain; port 0 picks a free one."""
    return GrpcServer(
        settings,
        settings.alerting_port if port is None else port,
        [(alerting_pb2_grpc.add_AlertingServiceServicer_to_server, AlertingServicer(alerting), SERVICE_NAME)],
    )
