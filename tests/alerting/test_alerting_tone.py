"""Tone in alerting over real gRPC: the anger-surge rule on a stream of posts, its validation, and the
abuse priority factor raised by offensive posts addressed to the agency."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from civic.listening.v1 import alerting_pb2, post_pb2
from services.alerting.priority import WEIGHTS
from services.alerting.rule_file import load_rules
from services.common.errors import InvalidArgument
from tests.alerting.helpers import ANGER, FIRING, HOUR, JOY, MONDAY, RESOLVED, Running, enriched, rule, toned


def hour(prefix: str, h: int, angry: int, calm: int, **fields: Any) -> list[post_pb2.EnrichedPost]:
    """`angry` posts whose main emotion is anger and `calm` joyful ones, spread over hour `h` of Monday."""
    posts = [toned(f"{prefix}-a{i}", MONDAY + h * HOUR + HOUR * i / (angry + calm), ANGER, **fields)
             for i in range(angry)]
    posts += [toned(f"{prefix}-c{i}", MONDAY + h * HOUR + HOUR * (angry + i) / (angry + calm), JOY, **fields)
              for i in range(calm)]
    return posts


def usual_day(hours: int = 6) -> list[post_pb2.EnrichedPost]:
    """2 angry posts in 10 every hour: a 20% anger share."""
    return [p for h in range(hours) for p in hour(f"u{h}", h, 2, 8)]


def test_anger_surge_fires_when_the_anger_share_jumps_above_the_baseline(alerting: Running) -> None:
    alerting.put(rule("anger", "anger_surge", threshold=30, min_posts=10))
    assert list(alerting.evaluate(usual_day()).fired) == []  # 20% throughout: no rise
    assert list(alerting.evaluate(hour("mild", 6, 4, 6)).fired) == []  # 40%: +20 points, below 30
    (alert,) = alerting.evaluate(hour("surge", 7, 8, 2)).fired  # 80%: +58 points over the pooled 23%
    assert (alert.rule_id, alert.state, alert.post_count) == ("anger", FIRING, 10)
    assert alert.window_start.ToDatetime().hour == 7
    assert alert.labels["kind"] == "anger_surge"
    assert "Anger was the main emotion of 80% of 10 posts" in alert.summary
    assert "against 23% before" in alert.summary
    # Calm again: the next closed hour does not fire and the alert resolves.
    alerting.evaluate(hour("calm", 8, 1, 9) + hour("next", 9, 0, 1))
    assert [(a.rule_id, a.state) for a in alerting.alerts()] == [("anger", RESOLVED)]


def test_anger_surge_stays_quiet_at_baseline_and_below_min_posts(alerting: Running) -> None:
    alerting.put(rule("anger", "anger_surge", threshold=30, min_posts=10))
    assert list(alerting.evaluate(usual_day()).fired) == []
    assert list(alerting.evaluate(hour("same", 6, 2, 8)).fired) == []  # the baseline share again
    assert list(alerting.evaluate(hour("fewer", 7, 1, 9)).fired) == []  # less anger than usual
    assert list(alerting.evaluate(hour("few", 8, 9, 0)).fired) == []  # all angry, but 9 posts < min_posts
    # Posts without an emotion (a model without the tone heads) count for nothing: still 9 toned posts.
    untoned = [enriched(f"plain-{i}", MONDAY + 8 * HOUR + HOUR * i / 20) for i in range(20)]
    assert list(alerting.evaluate(untoned).fired) == []
    assert alerting.alerts() == []
    # One more angry post reaches min_posts: the window fires, over 10 posts with an emotion.
    (alert,) = alerting.evaluate([toned("tenth", MONDAY + 8 * HOUR + HOUR / 2, ANGER)]).fired
    assert alert.post_count == 30 and "100% of 10 posts" in alert.summary


def test_anger_surge_needs_a_baseline_with_emotions(alerting: Running) -> None:
    """The first hours after the tone heads are deployed are not a surge over the hours before them."""
    alerting.put(rule("anger", "anger_surge", threshold=30, min_posts=5))
    before = [enriched(f"old-{h}-{i}", MONDAY + h * HOUR + HOUR * i / 10) for h in range(6) for i in range(10)]
    assert list(alerting.evaluate(before).fired) == []
    assert list(alerting.evaluate(hour("first", 6, 9, 1)).fired) == []
    assert alerting.alerts() == []


def test_anger_surge_counters_survive_a_restart(start: Callable[..., Running]) -> None:
    first = start()
    first.put(rule("anger", "anger_surge", threshold=30, min_posts=10))
    first.evaluate(usual_day())
    first.close()
    second = start()
    (alert,) = second.evaluate(hour("surge", 6, 9, 1)).fired
    assert "90% of 10 posts" in alert.summary and "against 20% before" in alert.summary


def test_anger_surge_counts_only_the_rules_matching_posts(alerting: Running) -> None:
    alerting.put(rule("metro", "anger_surge", query="metro", threshold=30, min_posts=10))
    alerting.evaluate([p for h in range(6) for p in hour(f"u{h}", h, 2, 8, text="metro ok")])
    # Angry posts about something else do not move the metro rule.
    assert list(alerting.evaluate(hour("bins", 6, 20, 0, text="bins not collected")).fired) == []
    (alert,) = alerting.evaluate(hour("metro", 7, 9, 1, text="metro stuck again")).fired
    assert alert.post_count == 10


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"threshold": 0}, "rule.threshold"),
        ({"threshold": 101}, "rule.threshold"),
        ({"threshold": 0.5}, "rule.threshold"),
        ({"threshold": 30, "min_posts": -1}, "rule.min_posts"),
        ({"threshold": 30, "window_seconds": 30}, "rule.window_seconds"),
    ],
)
def test_anger_surge_parameters_are_validated(alerting: Running, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        alerting.put(rule("anger", "anger_surge", **fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in str(caught.value.details())
    assert alerting.rules() == []


def test_anger_surge_in_a_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("- {id: a, tenant: t, kind: anger_surge, query: metro, threshold: 25, window_seconds: 3600, "
                    "min_posts: 20}\n")
    (parsed,) = load_rules(path)
    assert (parsed.kind, parsed.threshold, parsed.min_posts, parsed.query) == (
        alerting_pb2.RULE_KIND_ANGER_SURGE, 25.0, 20, "metro"
    )
    path.write_text("- {id: a, tenant: t, kind: anger_surge, threshold: 250, window_seconds: 3600}\n")
    with pytest.raises(InvalidArgument) as caught:
        load_rules(path)
    assert caught.value.field == "rules_file[0].threshold"


def test_rule_queries_see_the_tone_of_posts(alerting: Running) -> None:
    alerting.put(rule("abusive", "query_match", query="emotion:anger AND offensive:true", threshold=2))
    posts = [toned("angry-rude-1", MONDAY, ANGER, offensive=True), toned("angry-polite", MONDAY, ANGER),
             toned("happy-rude", MONDAY, JOY, offensive=True)]
    assert list(alerting.evaluate(posts).fired) == []
    (alert,) = alerting.evaluate([toned("angry-rude-2", MONDAY + HOUR / 2, ANGER, offensive=True)]).fired
    assert alert.post_count == 2


def factor(alert: alerting_pb2.Alert, name: str) -> alerting_pb2.PriorityFactor:
    return next(f for f in alert.priority_factors if f.name == name)


def test_offensive_posts_addressed_to_the_agency_raise_priority_with_the_reason(alerting: Running) -> None:
    """Three tenants get the same 10 posts about transit; in city-a 3 of them are offensive, in city-c 3
    are offensive but about none of the agency's topics (relevance 0.3), in city-b none is offensive."""
    for tenant in ("city-a", "city-b", "city-c"):
        alerting.put(rule("outage", "query_match", tenant=tenant, query="outage", threshold=5))

    def posts(tenant: str, offensive: int, addressed: bool) -> list[post_pb2.EnrichedPost]:
        made = []
        for i in range(10):
            about = addressed or i >= offensive
            made.append(toned(
                f"p{i}", MONDAY + HOUR * i / 10, ANGER, text="Outage on line 3 again", tenant=tenant, negative=True,
                offensive=i < offensive, topic="transit" if about else "", relevance=0.8 if about else 0.3,
            ))
        return made

    alerting.evaluate(posts("city-a", 3, True) + posts("city-b", 0, True) + posts("city-c", 3, False))
    (abused,), (plain,), (untargeted,) = (alerting.alerts(t) for t in ("city-a", "city-b", "city-c"))
    for alert in (abused, plain, untargeted):
        assert [f.name for f in alert.priority_factors] == list(WEIGHTS)
        assert sum(f.weight for f in alert.priority_factors) == pytest.approx(1.0)
        assert all(f.reason for f in alert.priority_factors)
    abuse = factor(abused, "abuse")
    assert abuse.value == pytest.approx(0.5781, abs=1e-3)  # ln(1 + 3) / ln(1 + 10)
    assert abused.priority == pytest.approx(plain.priority + 100 * abuse.value * abuse.weight, abs=0.02)
    assert abused.priority > plain.priority
    assert "3 offensive posts about the agency's topics (transit 3)" in abuse.reason
    assert "mastodon/p0" in abuse.reason
    assert factor(plain, "abuse").value == 0.0 and factor(plain, "abuse").reason.startswith("no offensive posts")
    assert factor(untargeted, "abuse").value == 0.0
    assert untargeted.priority == pytest.approx(plain.priority)
    # The other factors explain themselves too.
    assert factor(abused, "negativity").reason == "10 of 10 posts negative"
    assert factor(abused, "severity").reason == "warning rule"


def test_abuse_counts_late_posts_and_survives_a_restart(start: Callable[..., Running]) -> None:
    first = start()
    first.put(rule("outage", "query_match", query="outage", threshold=2))
    first.evaluate([toned(f"p{i}", MONDAY + HOUR * i / 4, text="outage") for i in range(3)])
    (before,) = first.alerts()
    assert factor(before, "abuse").value == 0.0
    first.close()
    second = start()
    late = [toned("rude", MONDAY + HOUR / 2, ANGER, offensive=True, topic="transit", text="outage")]
    second.evaluate(late)
    (after,) = second.alerts()
    assert factor(after, "abuse").value > 0 and "1 offensive post about" in factor(after, "abuse").reason
    assert after.priority > before.priority
