"""AlertingService over real gRPC on a real SQLite file, and again on a real PostgreSQL (`both_stores`):
each rule kind, windows, resolution, priority, rules management, validation and a restart on the same
store."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent import futures
from datetime import UTC, timedelta
from pathlib import Path

import grpc
import pytest

from civic.listening.v1 import alerting_pb2
from services.alerting.priority import WEIGHTS
from services.alerting.server import SERVICE_NAME
from services.alerting.service import MAX_QUEUED_EVALUATIONS
from services.devstack.launch import is_healthy
from tests.alerting.helpers import FIRING, HOUR, MONDAY, RESOLVED, Running, enriched, hourly_baseline, rule, spread

pytestmark = pytest.mark.both_stores


def test_serves_health(alerting: Running) -> None:
    assert is_healthy(alerting.target, SERVICE_NAME)


def test_query_match_fires_at_threshold_and_only_on_matching_posts(alerting: Running) -> None:
    alerting.put(rule("fee", "query_match", query="#ReliefFee payment", threshold=5, window_seconds=21600))
    relief = "Relief PAYMENT cancelled unless you pay a fee #ReliefFee"
    calm = [enriched(f"calm-{i}", MONDAY + i * HOUR / 2, "relief payment without the tag") for i in range(10)]
    calm += [enriched(f"tag-only-{i}", MONDAY + i * HOUR / 2, "#ReliefFee is a scam") for i in range(10)]
    calm += [enriched(f"few-{i}", MONDAY + i * HOUR, relief) for i in range(4)]
    assert list(alerting.evaluate(calm).fired) == []
    fired = alerting.evaluate([enriched("fifth", MONDAY + 5 * HOUR, relief)]).fired
    assert [(a.rule_id, a.post_count, a.state) for a in fired] == [("fee", 5, FIRING)]
    assert fired[0].window_start.ToDatetime(tzinfo=UTC) == MONDAY
    assert len(fired[0].sample_post_ids) == 5
    assert all(sample.startswith("mastodon/") for sample in fired[0].sample_post_ids)
    assert "#ReliefFee payment" in fired[0].summary


def test_volume_spike_fires_against_the_trailing_median(alerting: Running) -> None:
    alerting.put(rule("spike", "volume_spike", threshold=4, min_posts=25))
    assert list(alerting.evaluate(hourly_baseline(24, 6)).fired) == []
    spike_hour = MONDAY + 24 * HOUR
    # 4 x the median of 6 is 24 posts, and min_posts asks for 25.
    assert list(alerting.evaluate(spread("spike", 24, spike_hour, HOUR)).fired) == []
    (alert,) = alerting.evaluate([enriched("spike-25", spike_hour + HOUR / 2)]).fired
    assert (alert.rule_id, alert.post_count, alert.state) == ("spike", 25, FIRING)
    assert alert.window_start.ToDatetime(tzinfo=UTC) == spike_hour
    assert [a.id for a in alerting.alerts()] == [alert.id]
    assert "4.2x the usual 6" in alert.summary


def test_volume_spike_needs_min_posts_and_ignores_a_calm_stream(alerting: Running) -> None:
    alerting.put(rule("spike", "volume_spike", threshold=4, min_posts=25))
    rng = random.Random(3)
    calm = [p for h in range(72) for p in spread(f"calm-{h}", rng.randint(5, 15), MONDAY + h * HOUR, HOUR)]
    assert list(alerting.evaluate(calm).fired) == []
    # A quiet series (median 1) jumps to 20 posts: 20x the baseline, but fewer than min_posts.
    quiet = spread("quiet", 20, MONDAY + 200 * HOUR, HOUR)
    assert list(alerting.evaluate(quiet).fired) == []
    assert alerting.alerts() == []


def test_negative_share_fires_on_a_mostly_negative_day(alerting: Running) -> None:
    alerting.put(rule("negative", "negative_share", threshold=60, min_posts=30, window_seconds=86400))
    day = timedelta(days=1)
    calm = spread("calm-neg", 15, MONDAY, day, negative=True) + spread("calm-ok", 25, MONDAY, day)
    too_few = spread("few", 29, MONDAY + day, day, negative=True)
    assert list(alerting.evaluate(calm + too_few).fired) == []
    bad_day = spread("bad-neg", 28, MONDAY + 2 * day, day, negative=True) + spread("bad-ok", 12, MONDAY + 2 * day, day)
    (alert,) = alerting.evaluate(bad_day).fired
    assert alert.window_start.ToDatetime(tzinfo=UTC) == MONDAY + 2 * day
    assert alert.post_count == 40
    assert next(f.value for f in alert.priority_factors if f.name == "negativity") == pytest.approx(0.7)
    assert alert.summary.startswith("70% of 40 posts")


def test_fires_once_per_window_and_keeps_counting(alerting: Running) -> None:
    alerting.put(rule("match", "query_match", query="elevator", threshold=3))
    posts = spread("lift", 12, MONDAY, HOUR, text="The elevator at Central is broken")
    fired = [a for batch in range(4) for a in alerting.evaluate(posts[batch * 3 : batch * 3 + 3]).fired]
    assert len(fired) == 1
    (alert,) = alerting.alerts()
    assert (alert.id, alert.post_count, alert.fired_at) == (fired[0].id, 12, fired[0].fired_at)


def test_out_of_order_batches_and_redelivery_give_the_in_order_result(
    start: Callable[..., Running], tmp_path: Path
) -> None:
    # Window rules only: the volume detector learns windows in event-time order by design.
    rules = [
        rule("voices", "cardinality", threshold=30),
        rule("match", "query_match", query="line", threshold=10),
    ]
    stream = hourly_baseline(30, 6) + spread("spike", 40, MONDAY + 30 * HOUR, HOUR, text="Line 3 is down")
    stream += hourly_baseline(3, 6, MONDAY + 31 * HOUR)
    in_order = start()
    in_order.put(*rules)
    for i in range(0, len(stream), 25):
        in_order.evaluate(stream[i : i + 25])
    expected = [(a.id, a.post_count, a.state, a.priority) for a in in_order.alerts()]
    assert sorted((a.rule_id, a.state) for a in in_order.alerts()) == [("match", FIRING), ("voices", RESOLVED)]

    shuffled = start(alerting_state_path=tmp_path / "shuffled.sqlite3")
    shuffled.put(*rules)
    mixed = stream[:]
    random.Random(11).shuffle(mixed)
    position = 0
    rng = random.Random(5)
    while position < len(mixed):
        size = rng.randint(1, 60)
        shuffled.evaluate(mixed[position : position + size])
        shuffled.evaluate(mixed[max(position - 5, 0) : position + 3])  # at-least-once redelivery
        position += size
    assert [(a.id, a.post_count, a.state, a.priority) for a in shuffled.alerts()] == expected


def test_alert_resolves_once_a_later_window_closes_without_the_condition(alerting: Running) -> None:
    alerting.put(rule("match", "query_match", query="flood", threshold=3))
    text = "Flood on Main street"
    alerting.evaluate(spread("h0", 4, MONDAY, HOUR, text=text) + spread("h1", 5, MONDAY + HOUR, HOUR, text=text))
    assert [a.state for a in alerting.alerts()] == [FIRING, FIRING]
    alerting.evaluate(spread("h2", 1, MONDAY + 2 * HOUR, HOUR, text=text))  # hour 2 still open
    assert [a.state for a in alerting.alerts()] == [FIRING, FIRING]
    alerting.evaluate(spread("h3", 1, MONDAY + 3 * HOUR, HOUR, text=text))  # hour 2 closed below threshold
    assert [a.state for a in alerting.alerts()] == [RESOLVED, RESOLVED]
    # A resolved alert still counts late posts of its window.
    alerting.evaluate(spread("late", 2, MONDAY, HOUR, text=text))
    assert sorted(a.post_count for a in alerting.alerts()) == [5, 6]


def test_priority_orders_alerts_and_explains_itself(alerting: Running) -> None:
    alerting.put(
        rule("loud", "query_match", query="outage", threshold=3, severity=alerting_pb2.SEVERITY_CRITICAL),
        rule("quiet", "query_match", query="thanks", threshold=3, severity=alerting_pb2.SEVERITY_INFO),
    )
    outage = spread("out", 5, MONDAY, HOUR, text="Outage again", negative=True, followers=50_000, relevance=0.9)
    thanks = spread("thx", 5, MONDAY, HOUR, text="Thanks for the fix", followers=10)
    alerting.evaluate(outage + thanks)
    loud, quiet = alerting.alerts()
    assert (loud.rule_id, quiet.rule_id) == ("loud", "quiet")
    assert loud.priority > quiet.priority
    for alert in (loud, quiet):
        assert [f.name for f in alert.priority_factors] == list(WEIGHTS)
        assert sum(f.weight for f in alert.priority_factors) == pytest.approx(1.0)
        assert all(0.0 <= f.value <= 1.0 for f in alert.priority_factors)
        assert alert.priority == pytest.approx(100 * sum(f.value * f.weight for f in alert.priority_factors), abs=0.01)
    factors = {f.name: f.value for f in loud.priority_factors}
    assert factors["severity"] == 1.0
    assert factors["negativity"] == 1.0
    assert factors["relevance"] == pytest.approx(0.9, abs=1e-4)
    assert 0.9 < factors["reach"] < 1.0
    assert {f.name: f.value for f in quiet.priority_factors}["severity"] == pytest.approx(0.33)
    assert [a.rule_id for a in alerting.alerts(limit=1)] == ["loud"]


def test_put_and_list_rules(alerting: Running) -> None:
    (stored,) = alerting.put(rule("b-rule", "query_match", query="  Bins   Elm  ", threshold=2))
    assert (stored.name, stored.severity, stored.query) == ("b-rule", alerting_pb2.SEVERITY_WARNING, "Bins Elm")
    alerting.put(rule("a-rule", "volume_spike", name="Volume", threshold=3, min_posts=10))
    alerting.put(rule("b-rule", "query_match", query="bins", threshold=7, tenant="city-b"))
    assert [r.id for r in alerting.rules()] == ["a-rule", "b-rule"]
    assert [(r.id, r.threshold) for r in alerting.rules("city-b")] == [("b-rule", 7.0)]
    alerting.put(rule("b-rule", "query_match", query="bins", threshold=9))
    assert [r.threshold for r in alerting.rules() if r.id == "b-rule"] == [9.0]
    assert alerting.rules("nobody") == []


def invalid_field(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return str(caught.value.details()).split(":")[0]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (rule("has space", "query_match"), "rule.id"),
        (rule("", "query_match"), "rule.id"),
        (alerting_pb2.Rule(id="r", tenant="city-a", threshold=1, window_seconds=3600), "rule.kind"),
        (rule("r", "query_match", window_seconds=59), "rule.window_seconds"),
        (rule("r", "query_match", window_seconds=604_801), "rule.window_seconds"),
        (rule("r", "volume_spike", threshold=0), "rule.threshold"),
        (rule("r", "negative_share", threshold=101), "rule.threshold"),
        (rule("r", "negative_share", threshold=0.5), "rule.threshold"),
        (rule("r", "query_match", tenant="City A"), "rule.tenant"),
        (rule("r", "query_match", tenant=""), "rule.tenant"),
        (rule("r", "volume_spike", min_posts=-1), "rule.min_posts"),
    ],
)
def test_put_rule_validation_names_the_field(alerting: Running, bad: alerting_pb2.Rule, field: str) -> None:
    assert invalid_field(lambda: alerting.put(bad)) == field
    assert alerting.rules() == []


def test_request_validation_names_the_field(alerting: Running) -> None:
    assert invalid_field(lambda: alerting.stub.PutRule(alerting_pb2.PutRuleRequest(), timeout=10)) == "rule"
    assert invalid_field(lambda: alerting.evaluate([])) == "posts"
    assert invalid_field(lambda: alerting.evaluate([enriched("x", MONDAY)] * 5001)) == "posts"
    assert invalid_field(lambda: alerting.evaluate([enriched("x", MONDAY), enriched("y", MONDAY, tenant="")])) == (
        "posts[1].post.tenant"
    )
    undated = enriched("x", MONDAY)
    undated.post.ClearField("created_at")
    assert invalid_field(lambda: alerting.evaluate([undated])) == "posts[0].post.created_at"
    assert invalid_field(lambda: alerting.alerts(limit=501)) == "limit"
    assert invalid_field(lambda: alerting.alerts(limit=-1)) == "limit"
    assert invalid_field(lambda: alerting.alerts(tenant="")) == "tenant"
    assert invalid_field(lambda: alerting.rules(tenant="UPPER")) == "tenant"


def test_state_survives_a_restart(start: Callable[..., Running]) -> None:
    first = start()
    first.put(
        rule("match", "query_match", query="pothole", threshold=10),
        rule("spike", "volume_spike", threshold=4, min_posts=25),
    )
    first.evaluate(hourly_baseline(24, 6) + spread("hole", 6, MONDAY + 24 * HOUR, HOUR, text="Pothole on 5th"))
    first.evaluate(spread("hole-early", 12, MONDAY, HOUR, text="pothole again"))
    before = first.alerts()
    assert [(a.rule_id, a.post_count) for a in before] == [("match", 12)]
    first.close()

    second = start()
    assert [r.id for r in second.rules()] == ["match", "spike"]
    assert second.alerts() == before
    # The hour after the baseline already holds 6 posts: 19 more make the 25 (>= 4 x 6) a spike needs
    # only if the counters and the baseline were kept.
    fired = second.evaluate(spread("hole-more", 19, MONDAY + 24 * HOUR + HOUR / 2, HOUR / 2, text="pothole")).fired
    assert sorted((a.rule_id, a.post_count) for a in fired) == [("match", 25), ("spike", 25)]
    assert {a.rule_id for a in second.alerts()} == {"match", "spike"} and len(second.alerts()) == 3


def test_old_windows_and_remembered_posts_are_pruned(alerting: Running) -> None:
    alerting.put(rule("all", "query_match", threshold=100))
    store = alerting.alerting.store
    alerting.evaluate(spread("old", 3, MONDAY, HOUR))
    assert store.window("city-a", "all", int(MONDAY.timestamp())) is not None
    alerting.evaluate(spread("new", 2, MONDAY + timedelta(days=31), HOUR))
    assert store.window("city-a", "all", int(MONDAY.timestamp())) is None
    assert store.seen("city-a", ["mastodon/old-0", "mastodon/new-0"]) == {"mastodon/new-0"}
    # A straggler older than the kept history is remembered but neither counted nor alerted on.
    alerting.put(rule("any", "query_match", threshold=1))
    alerting.evaluate(spread("recent", 1, MONDAY + timedelta(days=31), HOUR))
    assert list(alerting.evaluate([enriched("straggler", MONDAY - timedelta(days=1))]).fired) == []
    assert store.window("city-a", "any", int((MONDAY - timedelta(days=1)).timestamp())) is None
    assert [a.window_start.ToDatetime(tzinfo=UTC) for a in alerting.alerts()] == [MONDAY + timedelta(days=31)]


def test_too_many_waiting_evaluations_are_turned_away(alerting: Running) -> None:
    alerting.put(rule("all", "query_match", threshold=100))
    extra = 4
    with futures.ThreadPoolExecutor(MAX_QUEUED_EVALUATIONS + extra) as pool:
        with alerting.alerting._evaluation:  # an evaluation in progress: every call has to wait
            pending = [
                pool.submit(alerting.evaluate, [enriched(f"call-{i}", MONDAY)])
                for i in range(MAX_QUEUED_EVALUATIONS + extra)
            ]
            finished = futures.as_completed(pending, timeout=30)
            turned_away = [next(finished).exception() for _ in range(extra)]
            time.sleep(0.5)
            assert sum(f.done() for f in pending) == extra  # the others wait their turn
        answered = [f.result().evaluated for f in pending if f.exception(timeout=30) is None]
    assert all(isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in turned_away)
    assert answered == [1] * MAX_QUEUED_EVALUATIONS
