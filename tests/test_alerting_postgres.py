"""Alerting on a real PostgreSQL: the store-level, lifecycle and webhook tests again on the shared store,
and two replicas (two servers, each with its own connection pool) on one database: rules, alerts and
events written by one are read by the other, a post sent to both is counted once, an alert is raised
once and each notification is delivered by one of them."""

# ruff: noqa: F401, F811 - the tests and fixtures imported from the SQLite modules are collected here, on PostgreSQL
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from civic.listening.v1 import alerting_pb2
from services.common.settings import Settings
from services.devstack.postgres_local import LocalPostgres
from tests.test_alerting_grpc import (
    FIRING,
    HOUR,
    MONDAY,
    Running,
    enriched,
    hourly_baseline,
    rule,
    spread,
    test_alert_resolves_once_a_later_window_closes_without_the_condition,
    test_fires_once_per_window_and_keeps_counting,
    test_negative_share_fires_on_a_mostly_negative_day,
    test_old_windows_and_remembered_posts_are_pruned,
    test_out_of_order_batches_and_redelivery_give_the_in_order_result,
    test_priority_orders_alerts_and_explains_itself,
    test_put_and_list_rules,
    test_query_match_fires_at_threshold_and_only_on_matching_posts,
    test_state_survives_a_restart,
    test_volume_spike_fires_against_the_trailing_median,
)
from tests.test_alerting_kinds import (
    test_list_alerts_by_state_and_delete_rule,
    test_new_term_fires_on_a_hashtag_absent_from_the_baseline,
    test_volume_drop_fires_on_a_flatline_seen_through_other_posts,
    test_volume_spike_detector_state_survives_a_restart,
)
from tests.test_alerting_lifecycle import (
    fire,
    test_acknowledge_assign_resolve_record_who_and_when,
    test_silences_mark_alerts_list_and_expire,
    test_unacknowledged_alerts_escalate_once,
    test_watch_resumes_after_a_disconnect_with_exactly_the_missed_events,
)
from tests.test_alerting_webhooks import (
    FAST,
    Receiver,
    hook,
    receiver,
    test_alertmanager_payload,
    test_deliveries_are_signed_and_retried_with_backoff,
    test_groups_cooldown_and_dedup,
    test_outbox_survives_a_restart,
    test_silenced_alerts_are_not_delivered_until_the_silence_expires,
    test_webhooks_list_and_delete,
)


@pytest.fixture
def start(tmp_path: Path, postgres_server: LocalPostgres, postgres_url: str) -> Iterator[Callable[..., Running]]:
    """Like the SQLite modules' fixture, on PostgreSQL: servers started in turn (or together) share the
    test's database; a test asking for another state file gets another database."""
    started: list[Running] = []
    databases = {tmp_path / "alerting.sqlite3": postgres_url}

    def factory(**overrides: Any) -> Running:
        path = overrides.pop("alerting_state_path", tmp_path / "alerting.sqlite3")
        if path not in databases:
            databases[path] = postgres_server.create_database(f"t_{len(databases)}_{postgres_url.rsplit('_', 1)[1]}")
        settings = Settings(
            alerting_state_path=path, alerting_database_url=databases[path], alerts_index_prefix="", **overrides
        )
        running = Running(settings)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.close()


@pytest.fixture
def alerting(start: Callable[..., Running]) -> Running:
    return start()


def test_columns_are_postgres_types(alerting: Running) -> None:
    rows = alerting.alerting.store.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name IN ('events', 'outbox', 'alerts')"
    )
    types = {f"{table}.{column}": kind for table, column, kind in rows}
    assert types["events.sequence"] == "bigint" and types["events.payload"] == "bytea"
    assert types["outbox.next_at"] == "double precision" and types["alerts.window_start"] == "bigint"
    assert types["outbox.idempotency_key"] == "text"


def test_replicas_share_rules_alerts_and_events(start: Callable[..., Running]) -> None:
    first, second = start(), start()
    first.put(rule("match", "query_match", query="pothole", threshold=4))
    assert [r.id for r in second.rules()] == ["match"]
    stream = spread("hole", 8, MONDAY, HOUR, text="pothole on 5th")
    assert list(first.evaluate(stream[:3]).fired) == []
    (fired,) = second.evaluate(stream[3:5]).fired  # the counters of the first replica's posts are shared
    assert fired.post_count == 5
    first.evaluate(stream[5:])
    assert [(a.id, a.post_count) for a in first.alerts()] == [(fired.id, 8)] == [(a.id, a.post_count) for a in
                                                                                   second.alerts()]
    # A rule replaced on one replica is what the other evaluates with.
    second.put(rule("match", "query_match", query="pothole", threshold=4, severity="SEVERITY_CRITICAL"))
    first.evaluate([enriched("late", MONDAY + HOUR / 2, "pothole")])
    assert second.alerts()[0].severity == alerting_pb2.SEVERITY_CRITICAL
    second.stub.DeleteRule(alerting_pb2.DeleteRuleRequest(tenant="city-a", id="match"))
    assert first.rules() == []


def test_the_same_posts_sent_to_both_replicas_at_once_count_once(start: Callable[..., Running]) -> None:
    first, second = start(), start()
    first.put(rule("match", "query_match", query="line", threshold=50), rule("spike", "volume_spike", threshold=3))
    stream = hourly_baseline(24, 5) + spread("burst", 120, MONDAY + 24 * HOUR, HOUR, text="Line 3 is down")
    batches = [stream[i : i + 40] for i in range(0, len(stream), 40)]
    fired: list[alerting_pb2.Alert] = []

    def send(running: Running) -> None:
        for batch in batches:
            fired.extend(running.evaluate(batch).fired)

    threads = [threading.Thread(target=send, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    alerts = first.alerts()
    assert sorted((a.rule_id, a.post_count) for a in alerts) == [("match", 120), ("spike", 120)]
    assert sorted(a.id for a in fired) == sorted(a.id for a in alerts)  # each reported fired by one replica
    events = first.alerting.store.events("city-a", 0, 100)
    assert sorted(e.alert.rule_id for e in events if e.kind == alerting_pb2.ALERT_EVENT_KIND_FIRED) == [
        "match", "spike"]


def test_each_notification_is_sent_by_one_replica(start: Callable[..., Running], receiver: Receiver) -> None:
    replicas = [start(**FAST), start(**FAST)]
    replicas[0].stub.PutWebhook(hook(receiver.url, cooldown_seconds=1, repeat_interval_seconds=3600))
    replicas[1].put(*(rule(f"r{i}", "query_match", query=f"word{i}") for i in range(6)))
    for i in range(6):
        replicas[i % 2].evaluate([enriched(f"p{i}", MONDAY, f"word{i} here")])
    delivered = receiver.wait_for(6, timeout_s=30)
    time.sleep(1.0)  # both replicas tick many times meanwhile
    keys = [r.key for r in receiver.requests]
    assert len(keys) == len(set(keys)) == 6
    assert sorted(r.json["alerts"][0]["rule_id"] for r in delivered) == [f"r{i}" for i in range(6)]


def test_a_notification_claimed_by_a_lost_replica_is_sent_once_its_claim_expires(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    lost = start(alerting_tick_s=3600)  # its loops never run: the test drives its notifier by hand
    lost.stub.PutWebhook(hook(receiver.url))
    lost.put(rule("holes", "query_match", query="pothole"))
    fire(lost, range(1))
    assert lost.alerting.notifier is not None
    lost.alerting.notifier.decide()
    # It claims the notification as a replica about to send does, and is killed before sending.
    ((key,),) = lost.alerting.store.execute(
        "UPDATE outbox SET claimed_until = ? RETURNING idempotency_key", (time.time() + 2.0,)
    )
    live = start(**FAST)
    time.sleep(1.0)
    assert receiver.requests == []  # the claim holds
    (delivered,) = receiver.wait_for(1, timeout_s=10)
    assert delivered.key == key and delivered.signed
    time.sleep(0.5)
    assert len(receiver.requests) == 1
    assert live.alerting.notifier is not None and live.alerting.notifier.pending("city-a") == (0, 0)


def test_a_watch_on_one_replica_streams_the_events_of_the_other(start: Callable[..., Running]) -> None:
    first, second = start(), start()
    first.put(rule("holes", "query_match", query="pothole"))
    stream = second.stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-a"), timeout=20)
    (alert,) = fire(first, range(1))
    event = next(stream).event
    assert (event.kind, event.alert.id, event.alert.state) == (alerting_pb2.ALERT_EVENT_KIND_FIRED, alert.id, FIRING)
    first.stub.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(tenant="city-a", alert_id=alert.id, by="ana"))
    event = next(stream).event
    assert (event.kind, event.alert.acknowledged_by) == (alerting_pb2.ALERT_EVENT_KIND_ACKNOWLEDGED, "ana")
    stream.cancel()


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    from services.alerting.service import open_alerting

    url = "postgresql://civic:hidden-password@127.0.0.1:1/alerting"
    with pytest.raises(RuntimeError, match=r"alerting database unreachable: .*127\.0\.0\.1.*port 1") as caught:
        open_alerting(Settings(alerting_state_path=tmp_path / "x", alerting_database_url=url, alerts_index_prefix=""))
    assert "hidden-password" not in str(caught.value)
