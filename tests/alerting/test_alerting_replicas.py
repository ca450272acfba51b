"""Two alerting replicas (two servers, each with its own connection pool) on one real PostgreSQL
database: rules, alerts and events written by one are read by the other, a post sent to both is
counted once, an alert is raised once and each notification is delivered by one of them. (The other
modules of this folder run their tests on PostgreSQL too: `both_stores`.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from civic.listening.v1 import alerting_pb2
from services.alerting.service import open_alerting
from services.common.settings import Settings
from tests.alerting.helpers import (
    FAST,
    FIRING,
    HOUR,
    MONDAY,
    Receiver,
    Running,
    enriched,
    fire,
    hook,
    hourly_baseline,
    rule,
    spread,
)

pytestmark = pytest.mark.slow  # a PostgreSQL server (once per session)


@pytest.fixture
def alerting_store() -> str:
    """This module's servers share a PostgreSQL database (the folder's `start` fixture)."""
    return "postgres"


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
    url = "postgresql://civic:hidden-password@127.0.0.1:1/alerting"
    with pytest.raises(RuntimeError, match=r"alerting database unreachable: .*127\.0\.0\.1.*port 1") as caught:
        open_alerting(Settings(alerting_state_path=tmp_path / "x", alerting_database_url=url, alerts_index_prefix=""))
    assert "hidden-password" not in str(caught.value)
