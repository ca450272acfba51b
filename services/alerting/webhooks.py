"""Webhook receivers of a tenant's notifications: validation, storage, grouping and signatures.

The secret is stored (it signs every delivery) but never returned: a receiver proves what it got by
recomputing HMAC-SHA256 of the raw body, sent as `X-Civic-Signature: sha256=<hex>`.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from civic.listening.v1 import alerting_pb2
from services.alerting.rules import LABEL_NAME, RULE_ID_PATTERN
from services.alerting.store import AlertStore
from services.common.errors import InvalidArgument, NotFound
from services.common.validation import require_tenant

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    tenant TEXT NOT NULL, id TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (tenant, id)
);
"""
SIGNATURE_HEADER = "X-Civic-Signature"
# The same on every attempt of one notification: receivers drop repeats by it (delivery is at-least-once).
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_COOLDOWN_S = 60
DEFAULT_REPEAT_S = 14_400
MAX_INTERVAL_S = 7 * 86_400
MAX_GROUP_BY = 10
MAX_URL_CHARS = 2000
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 512


def sign(secret: str, body: bytes) -> str:
    """The header value for a body: what the receiver compares with hmac.compare_digest."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def validate_webhook(webhook: alerting_pb2.Webhook) -> alerting_pb2.Webhook:
    """The webhook as it will be stored, with its defaults filled in; or InvalidArgument."""
    require_tenant(webhook.tenant, "webhook.tenant")
    if not RULE_ID_PATTERN.fullmatch(webhook.id):
        raise InvalidArgument("webhook.id", "must be 1-64 letters, digits, '-' or '_'")
    parts = urlsplit(webhook.url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(webhook.url) > MAX_URL_CHARS:
        raise InvalidArgument("webhook.url", f"must be an http or https URL of at most {MAX_URL_CHARS} characters")
    if not MIN_SECRET_CHARS <= len(webhook.secret) <= MAX_SECRET_CHARS:
        raise InvalidArgument("webhook.secret", f"must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters")
    if len(webhook.group_by) > MAX_GROUP_BY:
        raise InvalidArgument("webhook.group_by", f"at most {MAX_GROUP_BY} labels")
    for name in webhook.group_by:
        if not LABEL_NAME.fullmatch(name):
            raise InvalidArgument("webhook.group_by", f"{name!r} is not a label name")
    stored = alerting_pb2.Webhook()
    stored.CopyFrom(webhook)
    stored.cooldown_seconds = webhook.cooldown_seconds or DEFAULT_COOLDOWN_S
    stored.repeat_interval_seconds = webhook.repeat_interval_seconds or DEFAULT_REPEAT_S
    if not 1 <= stored.cooldown_seconds <= MAX_INTERVAL_S:
        raise InvalidArgument(
            "webhook.cooldown_seconds", f"must be 1 to {MAX_INTERVAL_S}, or 0 for {DEFAULT_COOLDOWN_S}"
        )
    if not stored.cooldown_seconds <= stored.repeat_interval_seconds <= MAX_INTERVAL_S:
        raise InvalidArgument(
            "webhook.repeat_interval_seconds", f"must be at least the cooldown and at most {MAX_INTERVAL_S}"
        )
    del stored.group_by[:]
    stored.group_by.extend(sorted(set(webhook.group_by)))
    return stored


def without_secret(webhook: alerting_pb2.Webhook) -> alerting_pb2.Webhook:
    shown = alerting_pb2.Webhook()
    shown.CopyFrom(webhook)
    shown.secret = ""
    return shown


def group_labels(webhook: alerting_pb2.Webhook, alert: alerting_pb2.Alert) -> dict[str, str]:
    """The labels that name the alert's notification group at this receiver: the rule and group_by."""
    labels = {"tenant": alert.tenant, "rule": alert.rule_id}
    labels.update({name: alert.labels.get(name, "") for name in webhook.group_by})
    return labels


def group_key(webhook: alerting_pb2.Webhook, alert: alerting_pb2.Alert) -> str:
    """Alertmanager's style of key: the receiver, then the group labels in order."""
    labels = group_labels(webhook, alert)
    return f"{webhook.id}:{{" + ",".join(f'{name}="{labels[name]}"' for name in sorted(labels)) + "}"


class Webhooks:
    """The webhooks table of the alerting store."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        store.add_schema(SCHEMA)

    def put(self, webhook: alerting_pb2.Webhook) -> alerting_pb2.Webhook:
        stored = validate_webhook(webhook)
        self.store.execute(
            "INSERT INTO webhooks (tenant, id, payload) VALUES (?, ?, ?) "
            "ON CONFLICT (tenant, id) DO UPDATE SET payload = excluded.payload",
            (stored.tenant, stored.id, stored.SerializeToString()),
        )
        return stored

    def get(self, tenant: str, webhook_id: str) -> alerting_pb2.Webhook | None:
        rows = self.store.execute("SELECT payload FROM webhooks WHERE tenant = ? AND id = ?", (tenant, webhook_id))
        return alerting_pb2.Webhook.FromString(bytes(rows[0][0])) if rows else None

    def list(self, tenant: str | None = None) -> list[alerting_pb2.Webhook]:
        """A tenant's webhooks by id (all tenants' with None), secrets included: for the notifier."""
        if tenant is None:
            rows = self.store.execute("SELECT payload FROM webhooks ORDER BY tenant, id")
        else:
            rows = self.store.execute("SELECT payload FROM webhooks WHERE tenant = ? ORDER BY id", (tenant,))
        return [alerting_pb2.Webhook.FromString(bytes(payload)) for (payload,) in rows]

    def delete(self, tenant: str, webhook_id: str) -> None:
        require_tenant(tenant)
        if self.get(tenant, webhook_id) is None:
            raise NotFound(f"webhook {webhook_id!r} of tenant {tenant!r} does not exist")
        self.store.execute("DELETE FROM webhooks WHERE tenant = ? AND id = ?", (tenant, webhook_id))
