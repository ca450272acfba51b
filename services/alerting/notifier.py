"""Webhook notifications: grouping, cooldown and repeat interval, then a persisted outbox delivered with
retries (exponential backoff with jitter) by a background worker, never by EvaluatePosts itself.

Each tick, per webhook, the tenant's firing alerts that no silence holds are grouped by rule and the
webhook's group_by labels. A group is notified when what it holds changed (an alert fired, escalated,
or resolved after it had been notified) and its cooldown has passed since its last notification, or
when it is still firing, unchanged, and its repeat interval has passed. The notification is written to
the `outbox` table first, so a restart delivers what was decided before it.

With several replicas on one store, one of them decides at a time (the caller holds the store's
`leader("notify")`), and each notification is claimed by one replica for a lease before it is sent: a
replica killed while sending leaves its claim to expire, and another sends it. A kill after the
receiver got the request but before the outbox row was deleted sends it again, so every request carries
the notification's `Idempotency-Key` (the same on each attempt) for receivers to drop repeats: HTTP
gives at-least-once delivery, exactly once only with that key.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from civic.listening.v1 import alerting_pb2
from services.alerting import payloads
from services.alerting.silences import Silences, silenced_by
from services.alerting.store import AlertStore
from services.alerting.webhooks import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, Webhooks, group_key, sign

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_groups (
    tenant TEXT NOT NULL, webhook_id TEXT NOT NULL, group_key TEXT NOT NULL, last_sent REAL NOT NULL,
    digest TEXT NOT NULL, notified TEXT NOT NULL, PRIMARY KEY (tenant, webhook_id, group_key)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, webhook_id TEXT NOT NULL,
    body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    claimed_until REAL NOT NULL DEFAULT 0, idempotency_key TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (failed, next_at);
"""
# Columns an outbox kept from an earlier release lacks.
OUTBOX_COLUMNS = {"claimed_until": "REAL NOT NULL DEFAULT 0", "idempotency_key": "TEXT NOT NULL DEFAULT ''"}
# A claim outlives the slowest delivery (connect and read timeouts) by this much.
CLAIM_MARGIN_S = 5.0
# Firing alerts of a tenant considered per tick; beyond them the lowest priorities wait.
MAX_FIRING = 5000
DELIVERIES_PER_TICK = 50
MAX_BACKOFF_S = 300.0
# Answers worth retrying; any other 4xx means the request itself is refused.
RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_base_s: float = 2.0
    external_url: str = ""

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Exponential in the attempts so far, with 'equal jitter' so receivers are not hit in step."""
        delay = min(MAX_BACKOFF_S, self.backoff_base_s * 2 ** max(attempts - 1, 0))
        return delay / 2 + rng.uniform(0, delay / 2)

    @property
    def claim_s(self) -> float:
        """How long a replica owns a notification it is sending; then another may send it."""
        return 2 * self.timeout_s + CLAIM_MARGIN_S


@dataclass
class Group:
    last_sent: float
    digest: str
    notified: list[str]


class Notifier:
    def __init__(
        self, store: AlertStore, webhooks: Webhooks, silences: Silences, policy: DeliveryPolicy,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.webhooks, self.silences, self.policy, self.clock = store, webhooks, silences, policy, clock
        self.rng = random.Random()
        self.client = httpx.Client(timeout=policy.timeout_s, follow_redirects=False)
        store.add_schema(SCHEMA)
        store.add_columns("outbox", OUTBOX_COLUMNS)

    def close(self) -> None:
        self.client.close()

    # --- deciding what to send -----------------------------------------------------------------

    def decide(self) -> None:
        now = self.clock()
        for webhook in self.webhooks.list():
            silences = self.silences.list(webhook.tenant, now)
            firing: dict[str, list[alerting_pb2.Alert]] = {}
            for alert in self.store.list_alerts(webhook.tenant, MAX_FIRING, alerting_pb2.ALERT_STATE_FIRING):
                if not silenced_by(silences, alert, now):
                    firing.setdefault(group_key(webhook, alert), []).append(alert)
            groups = self._groups(webhook)
            for key in sorted(set(firing) | set(groups)):
                self._decide_group(webhook, key, firing.get(key, []), groups.get(key), now)

    def _decide_group(
        self, webhook: alerting_pb2.Webhook, key: str, firing: list[alerting_pb2.Alert], group: Group | None,
        now: float,
    ) -> None:
        firing_ids = {alert.id for alert in firing}
        resolved = []
        for alert_id in group.notified if group else []:
            alert = self.store.alert(alert_id)
            if alert is not None and alert.id not in firing_ids and alert.state == alerting_pb2.ALERT_STATE_RESOLVED:
                resolved.append(alert)
        alerts = sorted(firing, key=lambda a: a.id) + sorted(resolved, key=lambda a: a.id)
        if not alerts:
            if group is not None:
                self._forget(webhook, key)
            return
        digest = json.dumps([[a.id, a.state, a.severity] for a in alerts])
        if group is None:
            due = True
        elif digest != group.digest:
            due = now - group.last_sent >= webhook.cooldown_seconds
        else:
            due = bool(firing) and now - group.last_sent >= webhook.repeat_interval_seconds
        if not due:
            return
        body = payloads.body(webhook, key, alerts, self.policy.external_url)
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO outbox (tenant, webhook_id, body, next_at, idempotency_key) VALUES (?, ?, ?, ?, ?)",
                (webhook.tenant, webhook.id, body, now, uuid.uuid4().hex),
            )
            self.store.execute(
                "INSERT INTO notify_groups (tenant, webhook_id, group_key, last_sent, digest, notified) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, webhook_id, group_key) DO UPDATE SET "
                "last_sent = excluded.last_sent, digest = excluded.digest, notified = excluded.notified",
                (webhook.tenant, webhook.id, key, now, digest, json.dumps(sorted(firing_ids))),
            )

    def _groups(self, webhook: alerting_pb2.Webhook) -> dict[str, Group]:
        rows = self.store.execute(
            "SELECT group_key, last_sent, digest, notified FROM notify_groups WHERE tenant = ? AND webhook_id = ?",
            (webhook.tenant, webhook.id),
        )
        return {str(k): Group(float(s), str(d), json.loads(str(n))) for k, s, d, n in rows}

    def _forget(self, webhook: alerting_pb2.Webhook, key: str) -> None:
        self.store.execute(
            "DELETE FROM notify_groups WHERE tenant = ? AND webhook_id = ? AND group_key = ?",
            (webhook.tenant, webhook.id, key),
        )

    # --- delivering ----------------------------------------------------------------------------

    def deliver(self) -> None:
        """Sends the due notifications of the outbox, oldest first, each claimed before it is sent;
        HTTP happens outside any transaction."""
        for _ in range(DELIVERIES_PER_TICK):
            now = self.clock()
            rows = self.store.execute(
                "UPDATE outbox SET claimed_until = ? WHERE id = (SELECT id FROM outbox WHERE failed = 0 "
                "AND next_at <= ? AND claimed_until <= ? ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING id, tenant, webhook_id, body, attempts, idempotency_key",
                (now + self.policy.claim_s, now, now),
            )
            if not rows:
                return
            self._deliver_one(*rows[0])

    def _deliver_one(
        self, row_id: int, tenant: str, webhook_id: str, body: bytes, attempts: int, key: str
    ) -> None:
        webhook = self.webhooks.get(str(tenant), str(webhook_id))
        if webhook is None:  # deleted since: nobody to tell
            self.store.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            return
        error, retry = self._post(webhook, bytes(body), str(key) or f"outbox-{row_id}")
        if error is None:
            self.store.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            return
        tries = int(attempts) + 1
        gave_up = not retry or tries >= self.policy.max_attempts
        if gave_up:
            log.warning("webhook %s/%s: giving up after %d attempts: %s", tenant, webhook_id, tries, error)
        self.store.execute(
            "UPDATE outbox SET attempts = ?, next_at = ?, failed = ?, last_error = ?, claimed_until = 0 WHERE id = ?",
            (tries, self.clock() + self.policy.backoff(tries, self.rng), int(gave_up), error, row_id),
        )

    def _post(self, webhook: alerting_pb2.Webhook, body: bytes, key: str) -> tuple[str | None, bool]:
        """None on a 2xx answer, else the error and whether it is worth retrying."""
        headers = {
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(webhook.secret, body), IDEMPOTENCY_HEADER: key,
        }
        try:
            response = self.client.post(webhook.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}", True
        if response.is_success:
            return None, False
        code = response.status_code
        return f"HTTP {code}", code >= 500 or code in RETRYABLE

    def pending(self, tenant: str) -> tuple[int, int]:
        """Notifications of a tenant waiting for delivery, and those given up on."""
        rows = self.store.execute(
            "SELECT SUM(CASE WHEN failed = 0 THEN 1 ELSE 0 END), SUM(failed) FROM outbox WHERE tenant = ?", (tenant,)
        )
        waiting, failed = rows[0]
        return int(waiting or 0), int(failed or 0)
