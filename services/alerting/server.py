"""The gRPC face of alerting: hands requests to the domain and maps its errors to status codes."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc
from services.alerting import lifecycle
from services.alerting.service import Alerting
from services.alerting.webhooks import without_secret
from services.common.errors import InvalidArgument
from services.common.grpc_server import GrpcServer, rpc_errors
from services.common.settings import Settings
from services.common.validation import require_tenant

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

    @rpc_errors
    def AcknowledgeAlert(
        self, request: alerting_pb2.AcknowledgeAlertRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.AcknowledgeAlertResponse:
        alert = self.alerting.act(lifecycle.acknowledge, request.tenant, request.alert_id, request.by)
        return alerting_pb2.AcknowledgeAlertResponse(alert=alert)

    @rpc_errors
    def AssignAlert(
        self, request: alerting_pb2.AssignAlertRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.AssignAlertResponse:
        alert = self.alerting.act(lifecycle.assign, request.tenant, request.alert_id, request.assignee, request.by)
        return alerting_pb2.AssignAlertResponse(alert=alert)

    @rpc_errors
    def ResolveAlert(
        self, request: alerting_pb2.ResolveAlertRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.ResolveAlertResponse:
        alert = self.alerting.act(lifecycle.resolve, request.tenant, request.alert_id, request.by)
        return alerting_pb2.ResolveAlertResponse(alert=alert)

    @rpc_errors
    def CreateSilence(
        self, request: alerting_pb2.CreateSilenceRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.CreateSilenceResponse:
        if not request.HasField("silence"):
            raise InvalidArgument("silence", "is required")
        silence = self.alerting.silences.create(request.silence, self.alerting.clock())
        return alerting_pb2.CreateSilenceResponse(silence=silence)

    @rpc_errors
    def ListSilences(
        self, request: alerting_pb2.ListSilencesRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.ListSilencesResponse:
        silences = self.alerting.silences.list(request.tenant, self.alerting.clock(), request.include_expired)
        return alerting_pb2.ListSilencesResponse(silences=silences)

    @rpc_errors
    def ExpireSilence(
        self, request: alerting_pb2.ExpireSilenceRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.ExpireSilenceResponse:
        silence = self.alerting.silences.expire(request.tenant, request.id, self.alerting.clock())
        return alerting_pb2.ExpireSilenceResponse(silence=silence)

    @rpc_errors
    def WatchAlerts(
        self, request: alerting_pb2.WatchAlertsRequest, context: grpc.ServicerContext
    ) -> Iterator[alerting_pb2.WatchAlertsResponse]:
        watch = self.alerting.watch(request.tenant, request.after_sequence)
        context.add_callback(watch.close)
        return (alerting_pb2.WatchAlertsResponse(event=event) for event in watch.events(context.is_active))

    @rpc_errors
    def PutWebhook(
        self, request: alerting_pb2.PutWebhookRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.PutWebhookResponse:
        if not request.HasField("webhook"):
            raise InvalidArgument("webhook", "is required")
        return alerting_pb2.PutWebhookResponse(webhook=without_secret(self.alerting.webhooks.put(request.webhook)))

    @rpc_errors
    def ListWebhooks(
        self, request: alerting_pb2.ListWebhooksRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.ListWebhooksResponse:
        require_tenant(request.tenant)
        webhooks = [without_secret(w) for w in self.alerting.webhooks.list(request.tenant)]
        return alerting_pb2.ListWebhooksResponse(webhooks=webhooks)

    @rpc_errors
    def DeleteWebhook(
        self, request: alerting_pb2.DeleteWebhookRequest, context: grpc.ServicerContext
    ) -> alerting_pb2.DeleteWebhookResponse:
        self.alerting.webhooks.delete(request.tenant, request.id)
        return alerting_pb2.DeleteWebhookResponse()


def build_server(settings: Settings, alerting: Alerting, port: int | None = None) -> GrpcServer:
    """An unstarted server for the alerting domain; port 0 picks a free one."""
    return GrpcServer(
        settings,
        settings.alerting_port if port is None else port,
        [(alerting_pb2_grpc.add_AlertingServiceServicer_to_server, AlertingServicer(alerting), SERVICE_NAME)],
    )
