"""What people do with an alert (acknowledge, assign, resolve by hand) and escalation when nobody does.

Each change is stored with who and when and recorded as an event, so that watchers, webhooks and the
Elasticsearch copy all see it. `who` is a string from the request until authentication exists.
"""

from __future__ import annotations

import logging

from civic.listening.v1 import alerting_pb2
from services.alerting import priority
from services.alerting.silences import require_by
from services.alerting.store import AlertStore
from services.common import enum_names
from services.common.errors import InvalidArgument, NotFound
from services.common.validation import require_tenant

log = logging.getLogger(__name__)

FIRING = alerting_pb2.ALERT_STATE_FIRING
RESOLVED = alerting_pb2.ALERT_STATE_RESOLVED
# One step up per escalation; critical stays critical (its priority still moves to the top of its peers).
RAISED = {
    alerting_pb2.SEVERITY_INFO: alerting_pb2.SEVERITY_WARNING,
    alerting_pb2.SEVERITY_WARNING: alerting_pb2.SEVERITY_CRITICAL,
    alerting_pb2.SEVERITY_CRITICAL: alerting_pb2.SEVERITY_CRITICAL,
}


def severity_word(severity: int) -> str:
    return enum_names.word(alerting_pb2.Severity, severity)


def effective_rule(rule: alerting_pb2.Rule, alert: alerting_pb2.Alert) -> alerting_pb2.Rule:
    """The rule as it applies to this alert: an escalated alert keeps its raised severity."""
    if not alert.HasField("escalated_at"):
        return rule
    raised = alerting_pb2.Rule()
    raised.CopyFrom(rule)
    raised.severity = RAISED.get(rule.severity, alerting_pb2.SEVERITY_CRITICAL)  # type: ignore[assignment]
    return raised


def escalation_labels(raised: alerting_pb2.Rule) -> dict[str, str]:
    """Labels of an escalated alert, so that silences and receivers can tell it apart."""
    return {"severity": severity_word(raised.severity), "escalated": "true"}


def _stamp(timestamp: object, now: float) -> None:
    timestamp.FromNanoseconds(int(now * 1e9))  # type: ignore[attr-defined]


def _alert(store: AlertStore, tenant: str, alert_id: str) -> alerting_pb2.Alert:
    require_tenant(tenant)
    if not alert_id:
        raise InvalidArgument("alert_id", "must not be empty")
    alert = store.alert(alert_id)
    if alert is None or alert.tenant != tenant:
        raise NotFound(f"alert {alert_id!r} of tenant {tenant!r} does not exist")
    return alert


def acknowledge(store: AlertStore, tenant: str, alert_id: str, by: str, now: float) -> alerting_pb2.Alert:
    """Records who is on it; stops escalation. Acknowledging again records the newer person."""
    who = require_by(by, "by")
    alert = _alert(store, tenant, alert_id)
    alert.acknowledged_by = who
    _stamp(alert.acknowledged_at, now)
    store.put_alert(alert)
    store.add_event(alerting_pb2.ALERT_EVENT_KIND_ACKNOWLEDGED, alert, now)
    return alert


def assign(
    store: AlertStore, tenant: str, alert_id: str, assignee: str, by: str, now: float
) -> alerting_pb2.Alert:
    target = require_by(assignee, "assignee")
    who = require_by(by, "by")
    alert = _alert(store, tenant, alert_id)
    alert.assignee, alert.assigned_by = target, who
    _stamp(alert.assigned_at, now)
    store.put_alert(alert)
    store.add_event(alerting_pb2.ALERT_EVENT_KIND_ASSIGNED, alert, now)
    return alert


def resolve(store: AlertStore, tenant: str, alert_id: str, by: str, now: float) -> alerting_pb2.Alert:
    """Resolves a firing alert by hand; an alert already resolved is returned unchanged."""
    who = require_by(by, "by")
    alert = _alert(store, tenant, alert_id)
    if alert.state == RESOLVED:
        return alert
    alert.state = RESOLVED
    alert.resolved_by = who
    _stamp(alert.resolved_at, now)
    store.put_alert(alert)
    store.add_event(alerting_pb2.ALERT_EVENT_KIND_RESOLVED, alert, now)
    return alert


def escalate_due(
    store: AlertStore, rules: dict[str, dict[str, alerting_pb2.Rule]], now: float
) -> list[alerting_pb2.Alert]:
    """Escalates each firing, unacknowledged alert older than its rule's escalate_after_seconds."""
    escalated = []
    for tenant, tenant_rules in rules.items():
        for rule in tenant_rules.values():
            if rule.escalate_after_seconds <= 0:
                continue
            for alert in store.firing_alerts(rule.tenant, rule.id, 2**62):
                fired_s = alert.fired_at.ToNanoseconds() / 1e9
                if alert.acknowledged_by or alert.HasField("escalated_at"):
                    continue
                if now - fired_s < rule.escalate_after_seconds:
                    continue
                _stamp(alert.escalated_at, now)
                raised = effective_rule(rule, alert)
                alert.severity = raised.severity
                alert.labels.update(escalation_labels(raised))
                for factor in alert.priority_factors:
                    if factor.name == "severity":
                        factor.value = priority.SEVERITY_VALUE[raised.severity]
                        factor.reason = priority.severity_reason(raised.severity, escalated=True)
                alert.priority = priority.priority(list(alert.priority_factors))
                store.put_alert(alert)
                store.add_event(alerting_pb2.ALERT_EVENT_KIND_ESCALATED, alert, now)
                log.info("alert %s of %s escalated to %s", alert.id, tenant, severity_word(raised.severity))
                escalated.append(alert)
    return escalated
