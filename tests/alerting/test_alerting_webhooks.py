"""Webhook notifications end to end: a real HTTP receiver on 127.0.0.1 verifies the HMAC of every
request and can fail the first ones; grouping, cooldown, dedup, silences, the Alertmanager payload and
the persisted outbox across a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from civic.listening.v1 import alerting_pb2
from tests.alerting.helpers import FAST, Receiver, Running, fire, hook, matcher, rule

pytestmark = pytest.mark.both_stores


def test_deliveries_are_signed_and_retried_with_backoff(start: Callable[..., Running], receiver: Receiver) -> None:
    receiver.fail_first = 2
    running = start(**FAST)
    stored = running.stub.PutWebhook(hook(receiver.url)).webhook
    assert stored.secret == "" and stored.cooldown_seconds == 60 and stored.repeat_interval_seconds == 14_400
    running.put(rule("holes", "query_match", query="pothole"))
    (alert,) = fire(running, range(1))
    (delivered,) = receiver.wait_for(1)
    assert len(receiver.requests) == 3 and all(r.signed for r in receiver.requests)
    assert len({r.body for r in receiver.requests}) == 1  # the same notification, retried
    assert len({r.key for r in receiver.requests}) == 1 and len(receiver.requests[0].key) == 32  # one key
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # jittered in [d/2, d], d = 0.1 then 0.2
    payload = delivered.json
    assert (payload["version"], payload["status"], payload["receiver"]) == ("civic.v1", "firing", "ops")
    assert [a["id"] for a in payload["alerts"]] == [alert.id]
    assert payload["alerts"][0]["group_key"] == payload["group_key"] == 'ops:{rule="holes",tenant="city-a"}'
    time.sleep(0.3)
    assert len(receiver.requests) == 3  # delivered once: nothing left in the outbox
    assert running.alerting.notifier is not None and running.alerting.notifier.pending("city-a") == (0, 0)


def test_groups_cooldown_and_dedup(start: Callable[..., Running], receiver: Receiver) -> None:
    running = start(**FAST)
    # A cooldown long enough that a loaded machine cannot blur "before" and "after" it.
    cooldown = 3
    running.stub.PutWebhook(
        hook(receiver.url, group_by=["team"], cooldown_seconds=cooldown, repeat_interval_seconds=3600)
    )
    running.put(rule("holes", "query_match", query="pothole", labels={"team": "roads"}),
                rule("lights", "query_match", query="streetlight", labels={"team": "roads"}))
    (first,) = fire(running, range(1))
    receiver.wait_for(1)
    (second,) = fire(running, range(1, 2))
    (light,) = fire(running, range(1, 2), "streetlight out")
    other_group = receiver.wait_for(2)[1].json  # another rule: another group, not held by the cooldown
    assert [a["id"] for a in other_group["alerts"]] == [light.id]
    assert other_group["group_labels"] == {"rule": "lights", "team": "roads", "tenant": "city-a"}
    assert time.monotonic() - receiver.requests[0].at < cooldown - 0.5
    both = receiver.wait_for(3)[2]
    # Held until the group's cooldown passed: counted from when the first delivery was sent, which the
    # receiver records a little later on a loaded machine (hence the same half-second margin as above).
    assert both.at - receiver.requests[0].at >= cooldown - 0.5
    assert sorted(a["id"] for a in both.json["alerts"]) == sorted([first.id, second.id])
    time.sleep(1.3)
    assert len(receiver.requests) == 3  # unchanged groups are not sent again before the repeat interval
    running.stub.ResolveAlert(alerting_pb2.ResolveAlertRequest(tenant="city-a", alert_id=second.id, by="ana"))
    resolved = receiver.wait_for(4)[3].json
    states = {a["id"]: a["state"] for a in resolved["alerts"]}
    assert states == {first.id: "ALERT_STATE_FIRING", second.id: "ALERT_STATE_RESOLVED"}


def test_alertmanager_payload(start: Callable[..., Running], receiver: Receiver) -> None:
    running = start(**FAST, alerting_external_url="https://civic.example.gov")
    running.stub.PutWebhook(hook(receiver.url, alertmanager_format=True))
    running.put(rule("holes", "query_match", query="pothole", labels={"team": "roads"}))
    (alert,) = fire(running, range(1))
    payload = receiver.wait_for(1)[0].json
    assert set(payload) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                            "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert (payload["version"], payload["status"], payload["receiver"], payload["truncatedAlerts"]) == (
        "4", "firing", "ops", 0)
    assert payload["externalURL"] == "https://civic.example.gov"
    assert payload["groupLabels"] == {"rule": "holes", "tenant": "city-a"}
    assert payload["commonLabels"]["team"] == "roads" and payload["commonLabels"]["alertname"] == "holes"
    (sent,) = payload["alerts"]
    assert set(sent) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert sent["status"] == "firing" and sent["endsAt"] == "0001-01-01T00:00:00Z"
    assert datetime.fromisoformat(sent["startsAt"]) == alert.fired_at.ToDatetime(tzinfo=UTC)
    assert len(sent["fingerprint"]) == 16 and sent["generatorURL"].endswith(f"/alerts/city-a/{alert.id}")
    assert sent["annotations"]["summary"] == alert.summary == payload["commonAnnotations"]["summary"]
    # One post, 1x its baseline of 1, warning rule: only severity counts.
    assert sent["annotations"]["priority_factors"] == "severity +10: warning rule"
    running.stub.ResolveAlert(alerting_pb2.ResolveAlertRequest(tenant="city-a", alert_id=alert.id, by="ana"))
    time.sleep(1.1)  # the default cooldown is 60 s: a resolution waits for it
    assert len(receiver.requests) == 1


def test_silenced_alerts_are_not_delivered_until_the_silence_expires(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    running = start(**FAST)
    running.stub.PutWebhook(hook(receiver.url))
    running.put(rule("holes", "query_match", query="pothole"))
    silence = alerting_pb2.Silence(tenant="city-a", matchers=[matcher("rule", "hol.*", "REGEX")], created_by="ana")
    silence.ends_at.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    made = running.stub.CreateSilence(alerting_pb2.CreateSilenceRequest(silence=silence)).silence
    (alert,) = fire(running, range(1))
    time.sleep(0.5)
    assert receiver.requests == []
    running.stub.ExpireSilence(alerting_pb2.ExpireSilenceRequest(tenant="city-a", id=made.id))
    assert [a["id"] for a in receiver.wait_for(1)[0].json["alerts"]] == [alert.id]


def test_outbox_survives_a_restart(start: Callable[..., Running], receiver: Receiver) -> None:
    receiver.fail_first = 10**6  # the receiver is down
    first = start(**FAST)
    first.stub.PutWebhook(hook(receiver.url))
    first.put(rule("holes", "query_match", query="pothole"))
    fire(first, range(1))
    deadline = time.monotonic() + 10
    while len(receiver.requests) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.close()
    body = receiver.requests[0].body
    receiver.fail_first = len(receiver.requests)  # back up
    start(**FAST)
    (delivered,) = receiver.wait_for(1)
    assert delivered.body == body and delivered.signed
    time.sleep(0.3)
    assert len(receiver.accepted()) == 1  # not decided again: the group state survived too


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"url": "ftp://x"}, "webhook.url"),
        ({"secret": "short"}, "webhook.secret"),
        ({"id": "a b"}, "webhook.id"),
        ({"group_by": ["no-dash"]}, "webhook.group_by"),
        ({"cooldown_seconds": 600, "repeat_interval_seconds": 60}, "webhook.repeat_interval_seconds"),
    ],
)
def test_webhook_validation(start: Callable[..., Running], fields: dict[str, Any], field_name: str) -> None:
    running = start()
    with pytest.raises(grpc.RpcError) as caught:
        running.stub.PutWebhook(hook(**{"url": "http://127.0.0.1:9/x", **fields}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field_name}:")


def test_webhooks_list_and_delete(start: Callable[..., Running]) -> None:
    running = start()
    running.stub.PutWebhook(hook("http://127.0.0.1:9/a", id="b"))
    running.stub.PutWebhook(hook("https://hooks.example/a", id="a", alertmanager_format=True))
    listed = running.stub.ListWebhooks(alerting_pb2.ListWebhooksRequest(tenant="city-a")).webhooks
    assert [(w.id, w.secret, w.alertmanager_format) for w in listed] == [("a", "", True), ("b", "", False)]
    running.stub.DeleteWebhook(alerting_pb2.DeleteWebhookRequest(tenant="city-a", id="a"))
    left = running.stub.ListWebhooks(alerting_pb2.ListWebhooksRequest(tenant="city-a")).webhooks
    assert [w.id for w in left] == ["b"]
    with pytest.raises(grpc.RpcError) as caught:
        running.stub.DeleteWebhook(alerting_pb2.DeleteWebhookRequest(tenant="city-a", id="a"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_slow_receiver_does_not_hold_evaluation(start: Callable[..., Running], receiver: Receiver) -> None:
    receiver.delay_s = 2.0
    running = start(**FAST)
    running.stub.PutWebhook(hook(receiver.url))
    running.put(rule("holes", "query_match", query="pothole"))
    fire(running, range(1))
    deadline = time.monotonic() + 5
    while not receiver.requests:  # the notifier is now waiting on the receiver's answer
        assert time.monotonic() < deadline
        time.sleep(0.02)
    began = time.monotonic()
    assert len(fire(running, range(1, 2))) == 1
    assert time.monotonic() - began < 1.0
