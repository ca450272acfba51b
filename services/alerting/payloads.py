"""The JSON bodies of webhook notifications: civic's own, and Alertmanager's webhook format (version 4)
so that existing receivers (chat bridges, paging tools) that understand Alertmanager work unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC

from google.protobuf import json_format

from civic.listening.v1 import alerting_pb2
from services.alerting.webhooks import group_labels

# Alerts per notification; the rest are counted in truncatedAlerts, as Alertmanager does.
MAX_ALERTS = 100
# Alertmanager's endsAt of an alert that is still firing: Go's zero time.
ZERO_TIME = "0001-01-01T00:00:00Z"
CIVIC_VERSION = "civic.v1"


def _rfc3339(timestamp: object) -> str:
    return timestamp.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]


def _status(alert: alerting_pb2.Alert) -> str:
    return "resolved" if alert.state == alerting_pb2.ALERT_STATE_RESOLVED else "firing"


def _common(maps: Sequence[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    return {key: value for key, value in maps[0].items() if all(m.get(key) == value for m in maps[1:])}


def alert_annotations(alert: alerting_pb2.Alert) -> dict[str, str]:
    """What a person reads; labels are what machines match."""
    return {
        "summary": alert.summary,
        "rule_name": alert.rule_name,
        "priority": f"{alert.priority:.2f}",
        "post_count": str(alert.post_count),
        "sample_post_ids": ",".join(alert.sample_post_ids),
        # Why it ranks where it does: each factor that counts, with its points and reason.
        "priority_factors": "; ".join(
            f"{f.name} +{100 * f.value * f.weight:.0f}: {f.reason}" for f in alert.priority_factors if f.value > 0
        ),
    }


def body(
    webhook: alerting_pb2.Webhook, key: str, alerts: Sequence[alerting_pb2.Alert], external_url: str
) -> bytes:
    """The raw body of one notification of a group; the signature covers exactly these bytes."""
    status = "firing" if any(_status(a) == "firing" for a in alerts) else "resolved"
    shown = list(alerts)[:MAX_ALERTS]
    labels = group_labels(webhook, alerts[0]) if alerts else {}
    if webhook.alertmanager_format:
        document: dict[str, object] = {
            "version": "4",
            "groupKey": key,
            "truncatedAlerts": len(alerts) - len(shown),
            "status": status,
            "receiver": webhook.id,
            "groupLabels": labels,
            "commonLabels": _common([dict(a.labels) for a in shown]),
            "commonAnnotations": _common([alert_annotations(a) for a in shown]),
            "externalURL": external_url,
            "alerts": [_alertmanager_alert(a, external_url) for a in shown],
        }
    else:
        document = {
            "version": CIVIC_VERSION,
            "receiver": webhook.id,
            "tenant": webhook.tenant,
            "status": status,
            "group_key": key,
            "group_labels": labels,
            "truncated_alerts": len(alerts) - len(shown),
            "alerts": [_civic_alert(a, key) for a in shown],
        }
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()


def _civic_alert(alert: alerting_pb2.Alert, key: str) -> dict[str, object]:
    grouped = alerting_pb2.Alert()
    grouped.CopyFrom(alert)
    grouped.group_key = key
    return json_format.MessageToDict(grouped, preserving_proto_field_name=True)


def _alertmanager_alert(alert: alerting_pb2.Alert, external_url: str) -> dict[str, object]:
    return {
        "status": _status(alert),
        "labels": dict(alert.labels),
        "annotations": alert_annotations(alert),
        "startsAt": _rfc3339(alert.fired_at),
        "endsAt": _rfc3339(alert.resolved_at) if alert.HasField("resolved_at") else ZERO_TIME,
        "generatorURL": f"{external_url.rstrip('/')}/alerts/{alert.tenant}/{alert.id}" if external_url else "",
        # Alertmanager's fingerprints are 16 hex digits; the alert id is already a stable hash.
        "fingerprint": alert.id[:16],
    }
