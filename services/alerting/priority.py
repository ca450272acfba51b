"""Alert priority: a weighted sum of factors in [0,1], kept with the alert so a person can see why.

The weights favour what the window says (how negative, how fast) over who said it, and leave a fifth
to the rule's own severity so that an operator's judgement still ranks alerts of equal evidence.
"""

from __future__ import annotations

import math

from civic.listening.v1 import alerting_pb2
from services.alerting.rules import WindowCounts

WEIGHTS: dict[str, float] = {
    "reach": 0.20,
    "negativity": 0.25,
    "velocity": 0.25,
    "relevance": 0.10,
    "severity": 0.20,
}
# An author with this many followers (or more) counts as full reach.
FULL_REACH_FOLLOWERS = 100_000
# A window this many times its baseline (or more) counts as full velocity.
FULL_VELOCITY_RATIO = 10.0
SEVERITY_VALUE = {
    alerting_pb2.SEVERITY_INFO: 0.33,
    alerting_pb2.SEVERITY_WARNING: 0.66,
    alerting_pb2.SEVERITY_CRITICAL: 1.0,
}


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def factors(rule: alerting_pb2.Rule, counts: WindowCounts, usual: float) -> list[alerting_pb2.PriorityFactor]:
    """The factors of a window's alert; `usual` is the window's baseline count (at least 1)."""
    values = {
        "reach": math.log1p(counts.max_followers) / math.log1p(FULL_REACH_FOLLOWERS),
        "negativity": counts.negative_percent / 100.0,
        "velocity": math.log(max(counts.count / usual, 1.0)) / math.log(FULL_VELOCITY_RATIO),
        "relevance": counts.max_relevance,
        "severity": SEVERITY_VALUE.get(rule.severity, SEVERITY_VALUE[alerting_pb2.SEVERITY_WARNING]),
    }
    return [
        alerting_pb2.PriorityFactor(name=name, value=round(_unit(values[name]), 4), weight=weight)
        for name, weight in WEIGHTS.items()
    ]


def priority(weighted: list[alerting_pb2.PriorityFactor]) -> float:
    """Priority in [0,100]."""
    return round(100.0 * _unit(sum(factor.value * factor.weight for factor in weighted)), 2)
