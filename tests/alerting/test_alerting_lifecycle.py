"""The alert lifecycle over real gRPC: acknowledge, assign and resolve with who and when, escalation of
unacknowledged alerts, silences and their expiry, and WatchAlerts resuming from its cursor."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from civic.listening.v1 import alerting_pb2
from services.alerting.service import MAX_WATCHES
from services.alerting.silences import matches
from tests.alerting.helpers import HOUR, MONDAY, RESOLVED, Running, enriched, fire, matcher, rule

pytestmark = pytest.mark.both_stores

EVENT = alerting_pb2.AlertEventKind


def code_and_field(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details().split(":")[0]


def test_acknowledge_assign_resolve_record_who_and_when(start: Callable[..., Running]) -> None:
    running = start()
    running.put(rule("holes", "query_match", query="pothole"))
    (alert,) = fire(running, range(1))
    before = time.time()
    stub = running.stub
    acked = stub.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(tenant="city-a", alert_id=alert.id, by="ana"))
    assigned = stub.AssignAlert(
        alerting_pb2.AssignAlertRequest(tenant="city-a", alert_id=alert.id, assignee="roads-team", by="ana")
    )
    resolved = stub.ResolveAlert(alerting_pb2.ResolveAlertRequest(tenant="city-a", alert_id=alert.id, by="ben"))
    final = resolved.alert
    assert acked.alert.acknowledged_by == "ana" and acked.alert.acknowledged_at.ToNanoseconds() / 1e9 >= before
    assert assigned.alert.assignee == "roads-team" and assigned.alert.assigned_by == "ana"
    assert (final.state, final.resolved_by, final.acknowledged_by, final.assignee) == (
        RESOLVED, "ben", "ana", "roads-team")
    stamps = [final.resolved_at, final.assigned_at, final.acknowledged_at]
    assert [t.ToNanoseconds() for t in stamps] == sorted((t.ToNanoseconds() for t in stamps), reverse=True)
    assert running.alerts() == [final]
    events = list(running.alerting.store.events("city-a", 0, 10))
    assert [e.kind for e in events] == [EVENT.ALERT_EVENT_KIND_FIRED, EVENT.ALERT_EVENT_KIND_ACKNOWLEDGED,
                                        EVENT.ALERT_EVENT_KIND_ASSIGNED, EVENT.ALERT_EVENT_KIND_RESOLVED]
    # Resolving again changes nothing; a later post of the window does not fire it again.
    again = stub.ResolveAlert(alerting_pb2.ResolveAlertRequest(tenant="city-a", alert_id=alert.id, by="cy")).alert
    assert again.resolved_by == "ben"
    assert list(running.evaluate([enriched("late", MONDAY + HOUR / 2, "pothole")]).fired) == []
    assert code_and_field(lambda: stub.AcknowledgeAlert(
        alerting_pb2.AcknowledgeAlertRequest(tenant="city-a", alert_id=alert.id, by=" "))
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "by")
    assert code_and_field(lambda: stub.AssignAlert(
        alerting_pb2.AssignAlertRequest(tenant="city-a", alert_id=alert.id, by="ana"))
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "assignee")
    assert code_and_field(lambda: stub.AcknowledgeAlert(
        alerting_pb2.AcknowledgeAlertRequest(tenant="city-b", alert_id=alert.id, by="ana"))
    )[0] == grpc.StatusCode.NOT_FOUND


def test_unacknowledged_alerts_escalate_once(start: Callable[..., Running]) -> None:
    running = start(alerting_tick_s=0.05)
    running.put(rule("holes", "query_match", query="pothole", severity="SEVERITY_WARNING", escalate_after_seconds=1))
    first, second = fire(running, range(2))
    running.stub.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(tenant="city-a", alert_id=first.id, by="ana"))
    deadline = time.monotonic() + 10
    while not any(a.HasField("escalated_at") for a in running.alerts()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few more ticks: escalation must not repeat
    alerts = {a.id: a for a in running.alerts()}
    escalated = alerts[second.id]
    assert escalated.HasField("escalated_at") and not alerts[first.id].HasField("escalated_at")
    assert escalated.severity == alerting_pb2.SEVERITY_CRITICAL and escalated.labels["escalated"] == "true"
    assert escalated.priority > second.priority
    assert escalated.escalated_at.ToNanoseconds() - escalated.fired_at.ToNanoseconds() >= 1e9
    kinds = [e.kind for e in running.alerting.store.events("city-a", 0, 20)]
    assert kinds.count(EVENT.ALERT_EVENT_KIND_ESCALATED) == 1
    # A later post of its window keeps the raised severity.
    running.evaluate([enriched("more", MONDAY + HOUR + HOUR / 2, "pothole")])
    assert {a.id: a for a in running.alerts()}[second.id].severity == alerting_pb2.SEVERITY_CRITICAL


def test_matchers_follow_alertmanager() -> None:
    labels = {"rule": "holes", "team": "roads", "severity": "warning"}
    assert matches(alerting_pb2.Silence(matchers=[matcher("team", "roads")]), labels)
    assert not matches(alerting_pb2.Silence(matchers=[matcher("team", "roads"), matcher("rule", "x")]), labels)
    assert matches(alerting_pb2.Silence(matchers=[matcher("rule", "hol.*", "REGEX")]), labels)
    assert not matches(alerting_pb2.Silence(matchers=[matcher("rule", "hol", "REGEX")]), labels)  # full match
    assert matches(alerting_pb2.Silence(matchers=[matcher("severity", "critical", "NOT_EQUAL")]), labels)
    assert not matches(alerting_pb2.Silence(matchers=[matcher("severity", "warn.*", "NOT_REGEX")]), labels)
    assert matches(alerting_pb2.Silence(matchers=[matcher("missing", "")]), labels)


def silence_request(
    ends_in_s: float, *matchers: alerting_pb2.Matcher, comment: str = ""
) -> alerting_pb2.CreateSilenceRequest:
    silence = alerting_pb2.Silence(tenant="city-a", matchers=matchers, created_by="ana", comment=comment)
    silence.ends_at.FromDatetime(datetime.now(UTC) + timedelta(seconds=ends_in_s))
    return alerting_pb2.CreateSilenceRequest(silence=silence)


def test_silences_mark_alerts_list_and_expire(start: Callable[..., Running]) -> None:
    running = start()
    running.put(rule("holes", "query_match", query="pothole", labels={"team": "roads"}))
    stub = running.stub
    made = stub.CreateSilence(silence_request(3600, matcher("team", "roads"), comment="works week")).silence
    assert made.id and made.HasField("starts_at") and made.matchers[0].operator == alerting_pb2.MATCH_OPERATOR_EQUAL
    other = stub.CreateSilence(silence_request(60, matcher("team", "parks"))).silence
    (alert,) = fire(running, range(1))
    assert list(running.alerts()[0].silenced_by) == [made.id]
    listed = stub.ListSilences(alerting_pb2.ListSilencesRequest(tenant="city-a")).silences
    assert [s.id for s in listed] == [made.id, other.id]  # newest end first
    expired = stub.ExpireSilence(alerting_pb2.ExpireSilenceRequest(tenant="city-a", id=made.id)).silence
    assert expired.ends_at.ToNanoseconds() <= time.time_ns()
    assert [s.id for s in stub.ListSilences(alerting_pb2.ListSilencesRequest(tenant="city-a")).silences] == [other.id]
    every = stub.ListSilences(alerting_pb2.ListSilencesRequest(tenant="city-a", include_expired=True)).silences
    assert {s.id for s in every} == {made.id, other.id}
    assert list(running.alerts()[0].silenced_by) == [] and running.alerts()[0].id == alert.id
    create = stub.CreateSilence
    assert code_and_field(lambda: create(silence_request(-5, matcher("team", "x")))) == (
        grpc.StatusCode.INVALID_ARGUMENT, "silence.ends_at")
    assert code_and_field(lambda: create(silence_request(60))) == (grpc.StatusCode.INVALID_ARGUMENT, "silence.matchers")
    assert code_and_field(lambda: create(silence_request(60, matcher("team", "(", "REGEX")))) == (
        grpc.StatusCode.INVALID_ARGUMENT, "silence.matchers[0].value")
    assert code_and_field(lambda: stub.ExpireSilence(alerting_pb2.ExpireSilenceRequest(tenant="city-a", id="nope")))[
        0] == grpc.StatusCode.NOT_FOUND


def read(stream: grpc.Future, count: int) -> list[alerting_pb2.AlertEvent]:
    return [next(stream).event for _ in range(count)]  # type: ignore[call-overload]


def test_watch_resumes_after_a_disconnect_with_exactly_the_missed_events(start: Callable[..., Running]) -> None:
    running = start()
    running.put(rule("holes", "query_match", query="pothole"))
    first, _ = fire(running, range(2))
    stub = running.stub
    stream = stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-a"), timeout=30)
    seen = read(stream, 2)
    assert [e.kind for e in seen] == [EVENT.ALERT_EVENT_KIND_FIRED] * 2
    stream.cancel()  # the client goes away
    stub.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(tenant="city-a", alert_id=first.id, by="ana"))
    fire(running, range(5, 6))  # fires hour 5, resolves the first two alerts
    missed = running.alerting.store.events("city-a", seen[-1].sequence, 100)
    assert len(missed) == 4
    resumed = stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-a", after_sequence=seen[-1].sequence),
                               timeout=30)
    got = read(resumed, len(missed))
    assert [(e.sequence, e.kind, e.alert.id) for e in got] == [(e.sequence, e.kind, e.alert.id) for e in missed]
    # Then live: a new event arrives on the open stream.
    stub.AssignAlert(alerting_pb2.AssignAlertRequest(tenant="city-a", alert_id=first.id, assignee="roads", by="ana"))
    (live,) = read(resumed, 1)
    assert live.kind == EVENT.ALERT_EVENT_KIND_ASSIGNED and live.sequence > got[-1].sequence
    resumed.cancel()
    code, field = code_and_field(lambda: next(stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-a",
                                                                                               after_sequence=-1))))
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "after_sequence")


def test_too_many_watches_are_turned_away(start: Callable[..., Running]) -> None:
    running = start()
    running.put(rule("holes", "query_match", query="pothole"))
    fire(running, range(1))
    streams = [running.stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-a"), timeout=30)
               for _ in range(MAX_WATCHES)]
    for stream in streams:
        read(stream, 1)
    with pytest.raises(grpc.RpcError) as caught:
        next(running.stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-a"), timeout=30))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    streams[0].cancel()
    deadline = time.monotonic() + 5
    while True:  # the slot comes back once the server sees the cancellation
        try:
            streams[0] = running.stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-a"), timeout=30)
            read(streams[0], 1)
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    for stream in streams:
        stream.cancel()
