"""The alerting domain: count posts into rule windows, raise, update and resolve alerts, list them.

Free of gRPC. Every batch is one SQLite transaction, so counters and alerts stay consistent through a
crash, and posts already evaluated (the forwarder delivers at least once) are not counted twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from civic.listening.v1 import alerting_pb2, post_pb2
from services.alerting import priority
from services.alerting.rule_file import load_rules
from services.alerting.rules import (
    BASELINE_WINDOWS,
    Observation,
    WindowCounts,
    baseline,
    condition_holds,
    counting_identity,
    query_terms,
    summary,
    text_terms,
    validate_rule,
    window_start,
)
from services.alerting.store import AlertStore
from services.common import telemetry
from services.common.errors import InvalidArgument, ResourceExhausted
from services.common.settings import Settings
from services.common.validation import require_channel, require_tenant

log = logging.getLogger(__name__)

MAX_EVALUATE_POSTS = 5000
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500
# Calls allowed to wait for the evaluation lock before further ones are turned away.
MAX_QUEUED_EVALUATIONS = 8
RETENTION_S = 30 * 86_400
FIRING = alerting_pb2.ALERT_STATE_FIRING
RESOLVED = alerting_pb2.ALERT_STATE_RESOLVED

WindowKey = tuple[str, str, int]  # tenant, rule id, window start


def alert_id(tenant: str, rule_id: str, start: int) -> str:
    """Stable across restarts and replicas: the same rule and window always give the same id."""
    return hashlib.sha256(f"{tenant}\x1f{rule_id}\x1f{start}".encode()).hexdigest()[:24]


def retention_s(rule: alerting_pb2.Rule) -> int:
    """How far behind its newest window a rule keeps counters: 30 days, or its whole baseline if longer."""
    return max(RETENTION_S, (BASELINE_WINDOWS + 1) * rule.window_seconds)


def validate_posts(posts: Sequence[post_pb2.EnrichedPost]) -> None:
    if not 1 <= len(posts) <= MAX_EVALUATE_POSTS:
        raise InvalidArgument("posts", f"must hold 1 to {MAX_EVALUATE_POSTS} posts, got {len(posts)}")
    for i, enriched in enumerate(posts):
        post = enriched.post
        require_tenant(post.tenant, f"posts[{i}].post.tenant")
        require_channel(post.channel, f"posts[{i}].post.channel")
        if not post.id:
            raise InvalidArgument(f"posts[{i}].post.id", "must not be empty")
        if post.created_at.seconds <= 0:
            raise InvalidArgument(f"posts[{i}].post.created_at", "must be set (alerts use event time)")


class Alerting:
    """Rules in memory (few, read on every post), everything else in the store."""

    def __init__(self, store: AlertStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._rules: dict[str, dict[str, alerting_pb2.Rule]] = {}
        for rule in store.rules():
            self._rules.setdefault(rule.tenant, {})[rule.id] = rule
        self._evaluation = threading.Lock()
        self._queue = threading.BoundedSemaphore(MAX_QUEUED_EVALUATIONS)

    # --- rules ---------------------------------------------------------------------------------

    def put_rule(self, rule: alerting_pb2.Rule) -> alerting_pb2.Rule:
        """Creates or replaces a rule; a new query, kind or window starts its counters afresh."""
        stored = validate_rule(rule)
        with self._evaluation, self.store.transaction():
            previous = self._rules.get(stored.tenant, {}).get(stored.id)
            if previous is not None and counting_identity(previous) != counting_identity(stored):
                self.store.drop_windows(stored.tenant, stored.id)
            self.store.put_rule(stored)
            # A new dict, not an update in place: list_rules reads without the lock.
            self._rules[stored.tenant] = {**self._rules.get(stored.tenant, {}), stored.id: stored}
        return stored

    def list_rules(self, tenant: str) -> list[alerting_pb2.Rule]:
        require_tenant(tenant)
        return sorted(self._rules.get(tenant, {}).values(), key=lambda rule: rule.id)

    # --- alerts --------------------------------------------------------------------------------

    def list_alerts(self, tenant: str, limit: int) -> list[alerting_pb2.Alert]:
        require_tenant(tenant)
        if limit == 0:
            limit = DEFAULT_LIST_LIMIT
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidArgument("limit", f"must be 1 to {MAX_LIST_LIMIT}, or 0 for {DEFAULT_LIST_LIMIT}")
        return self.store.list_alerts(tenant, limit)

    def evaluate(self, posts: Sequence[post_pb2.EnrichedPost]) -> list[alerting_pb2.Alert]:
        """Counts the posts into their rules' windows; returns the alerts raised for the first time."""
        validate_posts(posts)
        if not self._queue.acquire(blocking=False):
            raise ResourceExhausted(f"more than {MAX_QUEUED_EVALUATIONS} evaluations waiting; retry later")
        try:
            with telemetry.tracer(__name__).start_as_current_span("evaluate_posts") as span:
                telemetry.describe_batch(span, [p.post for p in posts])
                with self._evaluation, self.store.transaction():
                    return self._evaluate(posts)
        finally:
            self._queue.release()

    def _evaluate(self, posts: Sequence[post_pb2.EnrichedPost]) -> list[alerting_pb2.Alert]:
        deltas = self._count_new_posts(posts)
        horizons = self._horizons(deltas)
        fired: list[alerting_pb2.Alert] = []
        for tenant, rule_id, start in sorted(deltas, key=lambda key: (key[2], key[0], key[1])):
            if start < horizons[(tenant, rule_id)]:
                continue  # older than the kept history: its baseline and neighbours are gone
            rule = self._rules[tenant][rule_id]
            counts = self.store.window(tenant, rule_id, start) or WindowCounts()
            counts.merge(deltas[(tenant, rule_id, start)])
            self.store.put_window(tenant, rule_id, start, counts)
            raised = self._update_alert(rule, start, counts)
            if raised is not None:
                fired.append(raised)
        for tenant, rule_id in sorted({(tenant, rule_id) for tenant, rule_id, _ in deltas}):
            self._resolve_and_prune(self._rules[tenant][rule_id])
        for tenant in {tenant for tenant, _, _ in deltas}:
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
            terms = {rule.id: query_terms(rule.query) for rule in rules}
            for enriched in fresh.values():
                observed = Observation.of(enriched)
                words = text_terms(enriched.post.text)
                for rule in rules:
                    if terms[rule.id] <= words:
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

    def _update_alert(
        self, rule: alerting_pb2.Rule, start: int, counts: WindowCounts
    ) -> alerting_pb2.Alert | None:
        """Refreshes the window's alert, raising it if the condition now holds; returns it when new."""
        width = rule.window_seconds
        trailing = self.store.window_counts(rule.tenant, rule.id, start - BASELINE_WINDOWS * width, start)
        usual = baseline(trailing, start, width)
        existing = self.store.alert(alert_id(rule.tenant, rule.id, start))
        if existing is None and not condition_holds(rule, counts, usual):
            return None
        alert = existing or alerting_pb2.Alert(
            id=alert_id(rule.tenant, rule.id, start), tenant=rule.tenant, rule_id=rule.id, state=FIRING
        )
        if existing is None:
            alert.window_start.FromSeconds(start)
            alert.fired_at.FromNanoseconds(int(self.clock() * 1e9))
        alert.rule_name = rule.name
        alert.severity = rule.severity
        alert.summary = summary(rule, start, counts, usual)
        alert.post_count = counts.count
        alert.sample_post_ids[:] = counts.samples
        alert.priority_factors.clear()
        alert.priority_factors.extend(priority.factors(rule, counts, usual))
        alert.priority = priority.priority(list(alert.priority_factors))
        self.store.put_alert(alert)
        if existing is None:
            log.info("alert %s fired: %s %s", alert.id, rule.tenant, alert.summary)
            telemetry.count_alert(
                rule.tenant, rule.id, alerting_pb2.Severity.Name(rule.severity), alert.priority
            )
            return alert
        return None

    def _resolve_and_prune(self, rule: alerting_pb2.Rule) -> None:
        """An alert resolves once a later window closed without the condition (see README)."""
        latest = self.store.latest_window(rule.tenant, rule.id)
        if latest is None:
            return
        width = rule.window_seconds
        for alert in self.store.firing_alerts(rule.tenant, rule.id, latest - width):
            start = alert.window_start.seconds
            closed_after = (latest - start) // width - 1
            if self.store.alert_windows(rule.tenant, rule.id, start, latest) < closed_after:
                alert.state = RESOLVED
                self.store.put_alert(alert)
                log.info("alert %s resolved", alert.id)
        self.store.prune_windows(rule.tenant, rule.id, latest - retention_s(rule))


def open_alerting(settings: Settings) -> Alerting:
    """The domain on its state file, with the rules file's rules put over the stored ones."""
    alerting = Alerting(AlertStore(settings.alerting_state_path))
    if settings.rules_file is not None:
        rules = load_rules(settings.rules_file)
        for rule in rules:
            alerting.put_rule(rule)
        log.info("loaded %d rules from %s", len(rules), settings.rules_file)
    return alerting
