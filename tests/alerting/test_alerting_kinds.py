"""Each newer rule kind over real gRPC: it fires on the stream that should raise it, not on a calm one,
and resolves once a later window closes without the condition; detector state survives a restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from civic.listening.v1 import alerting_pb2
from tests.alerting.helpers import FIRING, HOUR, MONDAY, RESOLVED, Running, enriched, hourly_baseline, rule, spread

pytestmark = pytest.mark.both_stores


def states(running: Running) -> list[tuple[str, int]]:
    return sorted((a.rule_id, a.state) for a in running.alerts())


def test_volume_drop_fires_on_a_flatline_seen_through_other_posts(alerting: Running) -> None:
    alerting.put(rule("drop", "volume_drop", query="metro", threshold=3))
    metro = [p for h in range(30) for p in spread(f"m{h}", 8, MONDAY + h * HOUR, HOUR, text="metro on time")]
    assert list(alerting.evaluate(metro).fired) == []
    # The metro stream falls silent; other posts of the tenant move event time on.
    others = [enriched(f"o{h}", MONDAY + h * HOUR, "parking fees") for h in range(30, 32)]
    (alert,) = alerting.evaluate(others).fired
    assert (alert.rule_id, alert.post_count, alert.state) == ("drop", 0, FIRING)
    assert alert.window_start.ToDatetime().hour == 6  # hour 30 = Tuesday 06:00
    assert alert.labels["kind"] == "volume_drop"
    # Volume back to normal: the next closed window does not fire and the alert resolves.
    back = [p for h in range(31, 34) for p in spread(f"b{h}", 8, MONDAY + h * HOUR, HOUR, text="metro fine")]
    alerting.evaluate(back)
    assert states(alerting) == [("drop", RESOLVED)]


def test_volume_spike_detector_state_survives_a_restart(start: Callable[..., Running]) -> None:
    first = start()
    first.put(rule("spike", "volume_spike", threshold=2, min_posts=10))
    first.evaluate(hourly_baseline(26, 6))
    first.close()
    second = start()
    (alert,) = second.evaluate(spread("burst", 30, MONDAY + 26 * HOUR, HOUR)).fired
    assert (alert.rule_id, alert.post_count) == ("spike", 30)
    # A fresh state file would have no history: the detector is still warming up, nothing fires.
    fresh = start(alerting_state_path=second.alerting.store.path.parent / "fresh.sqlite3")
    fresh.put(rule("spike", "volume_spike", threshold=2, min_posts=10))
    assert list(fresh.evaluate(spread("burst", 30, MONDAY + 26 * HOUR, HOUR)).fired) == []


def test_sentiment_shift_needs_a_rise_over_the_baseline_share(alerting: Running) -> None:
    alerting.put(rule("shift", "sentiment_shift", threshold=30, min_posts=10))
    usual = [p for h in range(6) for p in spread(f"u{h}-n", 4, MONDAY + h * HOUR, HOUR, negative=True)
             + spread(f"u{h}-o", 6, MONDAY + h * HOUR, HOUR)]
    assert list(alerting.evaluate(usual).fired) == []  # 40% negative throughout
    mild = spread("mild-n", 6, MONDAY + 6 * HOUR, HOUR, negative=True) + spread("mild-o", 4, MONDAY + 6 * HOUR, HOUR)
    assert list(alerting.evaluate(mild).fired) == []  # 60%: +20 points
    bad = spread("bad-n", 9, MONDAY + 7 * HOUR, HOUR, negative=True) + spread("bad-o", 1, MONDAY + 7 * HOUR, HOUR)
    (alert,) = alerting.evaluate(bad).fired
    assert "90% of 10 posts" in alert.summary and "against 43% before" in alert.summary
    alerting.evaluate(spread("calm", 10, MONDAY + 8 * HOUR, HOUR) + spread("next", 1, MONDAY + 9 * HOUR, HOUR))
    assert states(alerting) == [("shift", RESOLVED)]


def test_new_term_fires_on_a_hashtag_absent_from_the_baseline(alerting: Running) -> None:
    alerting.put(rule("emerging", "new_term", threshold=3, window_seconds=21600))
    six = 6 * HOUR
    usual = spread("usual", 20, MONDAY, six, text="Water bills are high #WaterBills")
    usual += spread("usual2", 20, MONDAY + six, six, text="Water bills are high #WaterBills")
    assert list(alerting.evaluate(usual).fired) == []
    rumour = spread("r", 3, MONDAY + 2 * six, six, text="Tap water is poisoned #BoilNotice #WaterBills")
    (alert,) = alerting.evaluate(rumour + spread("w", 5, MONDAY + 2 * six, six, text="water bills")).fired
    assert alert.term == "#boilnotice"
    assert "#boilnotice (3 posts)" in alert.summary and "#waterbills" not in alert.summary
    later = spread("later", 5, MONDAY + 3 * six, six, text="water bills") + spread("l", 1, MONDAY + 4 * six, six)
    alerting.evaluate(later)
    assert states(alerting) == [("emerging", RESOLVED)]


def test_high_reach_fires_on_one_influential_author_or_engagement(alerting: Running) -> None:
    alerting.put(rule("reach", "high_reach", query="bridge", threshold=50_000))
    assert list(alerting.evaluate([enriched("small", MONDAY, "bridge closed", followers=900)]).fired) == []
    assert list(alerting.evaluate([enriched("big-off-topic", MONDAY, "nice day", followers=90_000)]).fired) == []
    (alert,) = alerting.evaluate([enriched("big", MONDAY + HOUR / 2, "The bridge is closed", followers=80_000)]).fired
    assert "80,000 followers" in alert.summary and "mastodon/big" in alert.summary
    viral = enriched("viral", MONDAY + 2 * HOUR, "bridge cracks", followers=10)
    viral.post.engagement.shares = 60_000
    (alert,) = alerting.evaluate([viral]).fired
    assert "60,000 interactions" in alert.summary


def test_cardinality_counts_distinct_authors(alerting: Running) -> None:
    alerting.put(rule("voices", "cardinality", query='"school bus"', threshold=5))
    same = spread("same", 10, MONDAY, HOUR, text="The school bus never came")
    for post in same:
        post.post.author.id = "one-parent"
    assert list(alerting.evaluate(same).fired) == []
    many = spread("many", 4, MONDAY, HOUR, text="school bus late")
    for i, post in enumerate(many):
        post.post.author.id = f"parent-{i}"
    (alert,) = alerting.evaluate(many).fired
    assert alert.summary.startswith("5 distinct authors")


def test_rule_queries_use_the_search_language(alerting: Running) -> None:
    alerting.put(rule("q", "query_match", query='"line 3" AND (outage OR delay) NOT channel:reddit', threshold=2))
    posts = [
        enriched("a", MONDAY, "Line 3 outage at Central"),
        enriched("b", MONDAY, "line 3 is fine"),
        enriched("c", MONDAY, "outage on line 4"),
    ]
    reddit = enriched("d", MONDAY, "Line 3 delay")
    reddit.post.channel = "reddit"
    assert list(alerting.evaluate([*posts, reddit]).fired) == []
    (alert,) = alerting.evaluate([enriched("e", MONDAY, "line 3 delay again")]).fired
    assert alert.post_count == 2
    assert alerting_pb2.RuleKind.Name(alerting.rules()[0].kind) == "RULE_KIND_QUERY_MATCH"


def test_list_alerts_by_state_and_delete_rule(alerting: Running) -> None:
    alerting.put(rule("flood", "query_match", query="flood", threshold=1))
    alerting.evaluate([enriched("a", MONDAY, "flood"), enriched("b", MONDAY + 2 * HOUR, "flood")])
    def listed(state: Any) -> list[tuple[str, int]]:
        reply = alerting.stub.ListAlerts(alerting_pb2.ListAlertsRequest(tenant="city-a", state=state), timeout=10)
        return [(a.rule_id, a.window_start.ToDatetime().hour) for a in reply.alerts]
    assert listed(RESOLVED) == [("flood", 0)]
    assert listed(FIRING) == [("flood", 2)]
    alerting.stub.DeleteRule(alerting_pb2.DeleteRuleRequest(tenant="city-a", id="flood"), timeout=10)
    assert alerting.rules() == [] and len(alerting.alerts()) == 2  # its alerts stay
    with pytest.raises(grpc.RpcError) as caught:
        alerting.stub.DeleteRule(alerting_pb2.DeleteRuleRequest(tenant="city-a", id="flood"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        alerting.stub.ListAlerts(alerting_pb2.ListAlertsRequest(tenant="city-a", state=7), timeout=10)  # type: ignore[arg-type]
    assert caught.value.details().startswith("state:")
