"""The alerting domain: count posts into rule windows, raise, update and resolve alerts, list them.

Free of gRPC. Every batch is one transaction, so counters and alerts stay consistent through a crash,
and posts already evaluated (the forwarder delivers at least once) are not counted twice. On a shared
store (PostgreSQL, several replicas) each transaction that writes a tenant's alerts or counters first
takes the tenant's lock, and rules are read from the store, where another replica may have changed them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from civic.listening.v1 import alerting_pb2, post_pb2
from services.alerting import es_copy, lifecycle, priority, volume
from services.alerting.background import Loop
from services.alerting.conditions import Trailing, condition_holds, new_terms, summary
from services.alerting.notifier import DeliveryPolicy, Notifier
from services.alerting.rule_file import load_rules
from services.alerting.rules import (
    BASELINE_WINDOWS,
    DETECTOR_KINDS,
    NEW_TERM,
    Observation,
    WindowCounts,
    alert_labels,
    counting_identity,
    post_document,
    validate_rule,
    window_start,
)
from services.alerting.silences import Silences, silenced_by
from services.alerting.store import AlertStore
from services.alerting.watch import Watch
from services.alerting.webhooks import Webhooks
from services.common import boolean_query, elasticsearch_client, telemetry
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from services.common.post_validation import MAX_TEXT_CHARS, check_post, require_created_at
from services.common.settings import Settings
from services.common.validation import require_tenant

log = logging.getLogger(__name__)

MAX_EVALUATE_POSTS = 5000
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500
# Calls allowed to wait for the evaluation lock before further ones are turned away.
MAX_QUEUED_EVALUATIONS = 8
RETENTION_S = 30 * 86_400
# Concurrent WatchAlerts streams (each holds a gRPC worker thread) before RESOURCE_EXHAUSTED.
MAX_WATCHES = 8
FIRING = alerting_pb2.ALERT_STATE_FIRING
RESOLVED = alerting_pb2.ALERT_STATE_RESOLVED
FIRED_EVENT = alerting_pb2.ALERT_EVENT_KIND_FIRED
RESOLVED_EVENT = alerting_pb2.ALERT_EVENT_KIND_RESOLVED

WindowKey = tuple[str, str, int]  # tenant, rule id, window start


def alert_id(tenant: str, rule_id: str, start: int) -> str:
    """Stable across restarts and replicas: the same rule and window always give the same id."""
    return hashlib.sha256(f"{tenant}\x1f{rule_id}\x1f{start}".encode()).hexdigest()[:24]


def retention_s(rule: alerting_pb2.Rule) -> int:
    """How far behind its newest window a rule keeps counters: 30 days, or its whole baseline if longer."""
    return max(RETENTION_S, (BASELINE_WINDOWS + 1) * rule.window_seconds)


def validate_posts(posts: Sequence[post_pb2.EnrichedPost], max_text_chars: int = MAX_TEXT_CHARS) -> None:
    """The same checks as ingestion's (services/common/post_validation.py), and an event time, which
    ingestion requires too: a post it accepted is never refused here."""
    if not 1 <= len(posts) <= MAX_EVALUATE_POSTS:
        raise InvalidArgument("posts", f"must hold 1 to {MAX_EVALUATE_POSTS} posts, got {len(posts)}")
    for i, enriched in enumerate(posts):
        check_post(enriched.post, f"posts[{i}].post", max_text_chars)
        require_created_at(enriched.post, f"posts[{i}].post")


class Alerting:
    """Rules in memory (few, read on every post), everything else in the store."""

    def __init__(
        self, store: AlertStore, clock: Callable[[], float] = time.time, max_text_chars: int = MAX_TEXT_CHARS
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_text_chars = max_text_chars
        self._rules: dict[str, dict[str, alerting_pb2.Rule]] = {}
        for rule in store.rules():
            self._rules.setdefault(rule.tenant, {})[rule.id] = rule
        self._evaluation = threading.Lock()
        self._queue = threading.BoundedSemaphore(MAX_QUEUED_EVALUATIONS)
        self._watches = threading.BoundedSemaphore(MAX_WATCHES)
        self.silences = Silences(store)
        self.webhooks = Webhooks(store)
        self.notifier: Notifier | None = None
        self._loops: list[Loop] = []

    def start_background(self, settings: Settings) -> None:
        """Escalation and webhook delivery, and the Elasticsearch copy of alerts, in their own threads."""
        self.notifier = Notifier(
            self.store, self.webhooks, self.silences,
            DeliveryPolicy(
                settings.webhook_timeout_s, settings.webhook_max_attempts, settings.webhook_backoff_base_s,
                settings.alerting_external_url,
            ),
            self.clock,
        )
        notifier = self.notifier
        self._loops.append(Loop("alerting-notify", settings.alerting_tick_s, lambda: self._notify(notifier)).start())
        if settings.alerts_index_prefix:
            index = es_copy.AlertIndex(
                self.store, elasticsearch_client.connect(settings), settings.alerts_index_prefix,
                settings.es_refresh_on_index,
            )
            self._loops.append(Loop("alerting-es-copy", settings.alerting_tick_s, index.drain).start())

    def _notify(self, notifier: Notifier) -> None:
        """One replica at a time escalates and decides what to notify; every replica delivers (each
        notification is claimed by one)."""
        with self.store.leader("notify") as leading:
            if leading:
                self.escalate()
                notifier.decide()
        notifier.deliver()

    def close(self) -> None:
        for loop in self._loops:
            loop.stop()
        if self.notifier is not None:
            self.notifier.close()
        self.store.close()

    # --- rules ---------------------------------------------------------------------------------

    def put_rule(self, rule: alerting_pb2.Rule) -> alerting_pb2.Rule:
        """Creates or replaces a rule; a new query, kind or window starts its counters afresh."""
        stored = validate_rule(rule)
        with self._evaluation, self.store.transaction():
            self._lock_and_refresh([stored.tenant])
            previous = self._rules.get(stored.tenant, {}).get(stored.id)
            if previous is not None and counting_identity(previous) != counting_identity(stored):
                self.store.drop_windows(stored.tenant, stored.id)
            self.store.put_rule(stored)
            # A new dict, not an update in place: list_rules reads without the lock.
            self._rules[stored.tenant] = {**self._rules.get(stored.tenant, {}), stored.id: stored}
        return stored

    def list_rules(self, tenant: str) -> list[alerting_pb2.Rule]:
        require_tenant(tenant)
        if self.store.shared:
            return self.store.rules(tenant)
        return sorted(self._rules.get(tenant, {}).values(), key=lambda rule: rule.id)

    def delete_rule(self, tenant: str, rule_id: str) -> None:
        require_tenant(tenant)
        with self._evaluation, self.store.transaction():
            self._lock_and_refresh([tenant])
            if rule_id not in self._rules.get(tenant, {}):
                raise NotFound(f"rule {rule_id!r} of tenant {tenant!r} does not exist")
            self.store.delete_rule(tenant, rule_id)
            self._rules[tenant] = {k: v for k, v in self._rules[tenant].items() if k != rule_id}

    def _lock_and_refresh(self, tenants: Sequence[str]) -> None:
        """Within a transaction: takes the tenants' locks, then (shared store) reads their rules afresh."""
        self.store.lock_tenants(tenants)
        if not self.store.shared:
            return
        for tenant in tenants:
            rules = {rule.id: rule for rule in self.store.rules(tenant)}
            if rules:
                self._rules[tenant] = rules
            else:
                self._rules.pop(tenant, None)

    # --- alerts --------------------------------------------------------------------------------

    def list_alerts(self, tenant: str, limit: int, state: int = 0) -> list[alerting_pb2.Alert]:
        require_tenant(tenant)
        if limit == 0:
            limit = DEFAULT_LIST_LIMIT
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidArgument("limit", f"must be 1 to {MAX_LIST_LIMIT}, or 0 for {DEFAULT_LIST_LIMIT}")
        if state not in (0, FIRING, RESOLVED):
            raise InvalidArgument("state", "must be FIRING, RESOLVED or unset")
        alerts = self.store.list_alerts(tenant, limit, state)
        now, silences = self.clock(), self.silences.list(tenant, self.clock())
        for alert in alerts:
            alert.silenced_by[:] = silenced_by(silences, alert, now)
        return alerts

    def act(
        self, action: Callable[..., alerting_pb2.Alert], tenant: str, alert_id: str, *args: str
    ) -> alerting_pb2.Alert:
        """Acknowledge, assign or resolve (a lifecycle function) under the evaluation lock, in one transaction."""
        with self._evaluation, self.store.transaction():
            self.store.lock_tenants([tenant])
            return action(self.store, tenant, alert_id, *args, self.clock())

    def escalate(self) -> list[alerting_pb2.Alert]:
        with self._evaluation, self.store.transaction():
            if self.store.shared:
                rules: dict[str, dict[str, alerting_pb2.Rule]] = {}
                for rule in self.store.rules():
                    rules.setdefault(rule.tenant, {})[rule.id] = rule
                self._rules = rules
            self.store.lock_tenants(
                t for t, rules_of in self._rules.items() if any(r.escalate_after_seconds for r in rules_of.values())
            )
            return lifecycle.escalate_due(self.store, self._rules, self.clock())

    def watch(self, tenant: str, after_sequence: int) -> Watch:
        """A stream of the tenant's events after the cursor; RESOURCE_EXHAUSTED beyond MAX_WATCHES."""
        require_tenant(tenant)
        if after_sequence < 0:
            raise InvalidArgument("after_sequence", "must not be negative")
        if not self._watches.acquire(blocking=False):
            raise ResourceExhausted(f"more than {MAX_WATCHES} watches open; retry later")
        return Watch(self.store, tenant, after_sequence, self._watches.release)

    def evaluate(self, posts: Sequence[post_pb2.EnrichedPost]) -> list[alerting_pb2.Alert]:
        """Counts the posts into their rules' windows; returns the alerts raised for the first time."""
        validate_posts(posts, self.max_text_chars)
        if not self._queue.acquire(blocking=False):
            raise ResourceExhausted(f"more than {MAX_QUEUED_EVALUATIONS} evaluations waiting; retry later")
        try:
            with telemetry.tracer(__name__).start_as_current_span("evaluate_posts") as span:
                telemetry.describe_batch(span, [p.post for p in posts])
                with self._evaluation, self.store.transaction():
                    self._lock_and_refresh(sorted({post.post.tenant for post in posts}))
                    return self._evaluate(posts)
        finally:
            self._queue.release()

    def _evaluate(self, posts: Sequence[post_pb2.EnrichedPost]) -> list[alerting_pb2.Alert]:
        deltas = self._count_new_posts(posts)
        horizons = self._horizons(deltas)
        # Every tenant of the batch, matched or not: its posts move event time on for volume rules.
        tenants = sorted({post.post.tenant for post in posts if post.post.tenant in self._rules})
        touched = sorted({(tenant, rule_id) for tenant, rule_id, _ in deltas})
        fired: list[alerting_pb2.Alert] = []
        for tenant, rule_id, start in sorted(deltas, key=lambda key: (key[2], key[0], key[1])):
            if start < horizons[(tenant, rule_id)]:
                continue  # older than the kept history: its baseline and neighbours are gone
            counts = self.store.window(tenant, rule_id, start) or WindowCounts()
            counts.merge(deltas[(tenant, rule_id, start)])
            self.store.put_window(tenant, rule_id, start, counts)
        for tenant in tenants:
            watermark = self.store.latest_seen(tenant)
            for rule in self._rules[tenant].values():
                if rule.kind in DETECTOR_KINDS:
                    fired += self._learn_volume(rule, window_start(watermark, rule.window_seconds))
        for tenant, rule_id, start in sorted(deltas, key=lambda key: (key[2], key[0], key[1])):
            if start >= horizons[(tenant, rule_id)]:
                raised = self._judge(self._rules[tenant][rule_id], start)
                fired += [raised] if raised is not None else []
        for tenant in tenants:
            watermark = self.store.latest_seen(tenant)
            for rule in self._rules[tenant].values():
                if rule.kind in DETECTOR_KINDS:
                    self._resolve_and_prune(rule, window_start(watermark, rule.window_seconds))
        for tenant, rule_id in touched:
            rule = self._rules[tenant][rule_id]
            if rule.kind not in DETECTOR_KINDS:
                self._resolve_and_prune(rule, self.store.latest_window(tenant, rule_id))
        for tenant in tenants:
            if not self._rules[tenant]:
                continue
            longest = max(retention_s(rule) for rule in self._rules[tenant].values())
            self.store.prune_seen(tenant, self.store.latest_seen(tenant) - longest)
        return [self.store.alert(alert.id) or alert for alert in fired]

    def _count_new_posts(self, posts: Sequence[post_pb2.EnrichedPost]) -> dict[WindowKey, WindowCounts]:
        by_tenant: dict[str, dict[str, post_pb2.EnrichedPost]] = {}
        for enriched in posts:
            if enriched.post.tenant in self._rules:
                key = f"{enriched.post.channel}/{enriched.post.id}"
                by_tenant.setdefault(enriched.post.tenant, {}).setdefault(key, enriched)
        deltas: dict[WindowKey, WindowCounts] = {}
        for tenant, fresh in by_tenant.items():
            for key in self.store.seen(tenant, list(fresh)):
                del fresh[key]
            rules = list(self._rules[tenant].values())
            queries = {rule.id: boolean_query.parse(rule.query) for rule in rules}
            for enriched in fresh.values():
                doc = post_document(enriched)
                observed = Observation.of(enriched, doc)
                for rule in rules:
                    if queries[rule.id].matches(doc):
                        start = window_start(observed.event_ts, rule.window_seconds)
                        deltas.setdefault((tenant, rule.id, start), WindowCounts()).add(observed)
            self.store.mark_seen(tenant, ((key, post.post.created_at.seconds) for key, post in fresh.items()))
        return deltas

    def _horizons(self, deltas: dict[WindowKey, WindowCounts]) -> dict[tuple[str, str], int]:
        """Per touched rule, the oldest window start still kept once this batch is counted."""
        newest: dict[tuple[str, str], int] = {}
        for tenant, rule_id, start in deltas:
            newest[(tenant, rule_id)] = max(newest.get((tenant, rule_id), start), start)
        horizons = {}
        for (tenant, rule_id), start in newest.items():
            latest = max(start, self.store.latest_window(tenant, rule_id) or start)
            horizons[(tenant, rule_id)] = latest - retention_s(self._rules[tenant][rule_id])
        return horizons

    def _learn_volume(self, rule: alerting_pb2.Rule, open_start: int) -> list[alerting_pb2.Alert]:
        """Feeds a volume rule's detector its newly closed windows; alerts raised by them."""
        raised = []
        horizon = open_start - retention_s(rule)
        for start, verdict in volume.learn_closed(self.store, rule, open_start, horizon):
            alert = self._judge(rule, start, volume.anomalous(rule, verdict))
            if alert is not None:
                raised.append(alert)
        return raised

    def _judge(
        self, rule: alerting_pb2.Rule, start: int, detector_alert: bool | None = None
    ) -> alerting_pb2.Alert | None:
        """Refreshes the window's alert, raising it if the condition now holds; returns it when new."""
        width = rule.window_seconds
        counts = self.store.window(rule.tenant, rule.id, start) or WindowCounts()
        before = self.store.windows(rule.tenant, rule.id, start - BASELINE_WINDOWS * width, start)
        trailing = Trailing.of(before, start, width)
        existing = self.store.alert(alert_id(rule.tenant, rule.id, start))
        if existing is None:
            if rule.kind in DETECTOR_KINDS and detector_alert is None:
                verdict = volume.score_open(self.store, rule, start, counts.count)
                detector_alert = verdict is not None and volume.anomalous(rule, verdict)
            if not condition_holds(rule, counts, trailing, bool(detector_alert)):
                return None
        alert = existing or alerting_pb2.Alert(
            id=alert_id(rule.tenant, rule.id, start), tenant=rule.tenant, rule_id=rule.id, state=FIRING
        )
        if existing is None:
            alert.window_start.FromSeconds(start)
            alert.fired_at.FromNanoseconds(int(self.clock() * 1e9))
        alert.rule_name = rule.name
        applied = lifecycle.effective_rule(rule, alert)
        alert.severity = applied.severity
        alert.summary = summary(rule, start, counts, trailing)
        alert.post_count = counts.count
        alert.sample_post_ids[:] = counts.samples
        if rule.kind == NEW_TERM and not alert.term:
            alert.term = next(iter(new_terms(rule, counts, trailing)), "")
        alert.labels.clear()
        alert.labels.update(alert_labels(rule))
        if alert.HasField("escalated_at"):
            alert.labels.update(lifecycle.escalation_labels(applied))
        alert.priority_factors.clear()
        alert.priority_factors.extend(
            priority.factors(applied, counts, trailing.usual, escalated=alert.HasField("escalated_at"))
        )
        alert.priority = priority.priority(list(alert.priority_factors))
        self.store.put_alert(alert)
        if existing is None:
            self.store.add_event(FIRED_EVENT, alert, self.clock())
            log.info("alert %s fired: %s %s", alert.id, rule.tenant, alert.summary)
            telemetry.count_alert(
                rule.tenant, rule.id, alerting_pb2.Severity.Name(rule.severity), alert.priority
            )
            return alert
        return None

    def _resolve_and_prune(self, rule: alerting_pb2.Rule, latest: int | None) -> None:
        """An alert resolves once a later window closed without the condition (see README)."""
        if latest is None:
            return
        width = rule.window_seconds
        for alert in self.store.firing_alerts(rule.tenant, rule.id, latest - width):
            start = alert.window_start.seconds
            closed_after = (latest - start) // width - 1
            if self.store.alert_windows(rule.tenant, rule.id, start, latest) < closed_after:
                alert.state = RESOLVED
                alert.resolved_at.FromNanoseconds(int(self.clock() * 1e9))
                self.store.put_alert(alert)
                self.store.add_event(RESOLVED_EVENT, alert, self.clock())
                log.info("alert %s resolved", alert.id)
        self.store.prune_windows(rule.tenant, rule.id, latest - retention_s(rule))


def open_alerting(settings: Settings) -> Alerting:
    """The domain on its store (the PostgreSQL database if one is set, else the state file), with the
    rules file's rules put over the stored ones, and its background loops started (close() stops them)."""
    store = AlertStore(settings.alerting_state_path, settings.alerting_database_url)
    alerting = Alerting(store, max_text_chars=settings.max_text_chars)
    if settings.rules_file is not None:
        rules = load_rules(settings.rules_file)
        for rule in rules:
            alerting.put_rule(rule)
        log.info("loaded %d rules from %s", len(rules), settings.rules_file)
    alerting.start_background(settings)
    return alerting
