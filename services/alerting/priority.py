"""Alert priority: a weighted sum of factors in [0,1], kept with the alert so a person can see why.

The weights favour what the window says (how fast it grows, how negative it is) over who said it, and
leave a share to the rule's own severity so that an operator's judgement still ranks alerts of equal
evidence. `abuse` lifts alerts whose window holds offensive or threatening posts addressed to the
agency (rules.abused): those need a person soon, for the staff's safety and for moderation, even when
the volume is small. Each factor carries a reason in words.
"""

from __future__ import annotations

import math

from civic.listening.v1 import alerting_pb2
from services.alerting.rules import WindowCounts
from services.common import enum_names

WEIGHTS: dict[str, float] = {
    "reach": 0.15,
    "negativity": 0.20,
    "velocity": 0.25,
    "relevance": 0.10,
    "severity": 0.15,
    "abuse": 0.15,
}
# An author with this many followers (or more) counts as full reach.
FULL_REACH_FOLLOWERS = 100_000
# A window this many times its baseline (or more) counts as full velocity.
FULL_VELOCITY_RATIO = 10.0
# This many offensive posts addressed to the agency (or more) in a window count as full abuse.
FULL_ABUSE_POSTS = 10
SEVERITY_VALUE = {
    alerting_pb2.SEVERITY_INFO: 0.33,
    alerting_pb2.SEVERITY_WARNING: 0.66,
    alerting_pb2.SEVERITY_CRITICAL: 1.0,
}


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def severity_reason(severity: int, escalated: bool = False) -> str:
    word = enum_names.word(alerting_pb2.Severity, severity)
    return f"{word}, escalated for being unacknowledged" if escalated else f"{word} rule"


def abuse_reason(counts: WindowCounts) -> str:
    if not counts.abusive:
        return "no offensive posts about the agency's topics"
    topics = ", ".join(f"{topic} {n}" for topic, n in sorted(counts.abuse_topics.items(), key=lambda t: (-t[1], t[0])))
    plural = "s" if counts.abusive > 1 else ""
    return (
        f"{counts.abusive} offensive post{plural} about the agency's topics ({topics}), "
        f"e.g. {', '.join(counts.abuse_samples)}"
    )


def factors(
    rule: alerting_pb2.Rule, counts: WindowCounts, usual: float, escalated: bool = False
) -> list[alerting_pb2.PriorityFactor]:
    """The factors of a window's alert; `usual` is the window's baseline count (at least 1); `rule` carries
    the alert's severity (raised if it was `escalated`)."""
    severity = rule.severity if rule.severity in SEVERITY_VALUE else alerting_pb2.SEVERITY_WARNING
    values: dict[str, tuple[float, str]] = {
        "reach": (
            math.log1p(counts.max_followers) / math.log1p(FULL_REACH_FOLLOWERS),
            f"largest author: {counts.max_followers:,} followers",
        ),
        "negativity": (counts.negative_percent / 100.0, f"{counts.negative} of {counts.count} posts negative"),
        "velocity": (
            math.log(max(counts.count / usual, 1.0)) / math.log(FULL_VELOCITY_RATIO),
            f"{counts.count} posts against a usual {usual:g} per window",
        ),
        "relevance": (counts.max_relevance, f"highest topic relevance {counts.max_relevance:.2f}"),
        "severity": (SEVERITY_VALUE[severity], severity_reason(severity, escalated)),
        "abuse": (math.log1p(counts.abusive) / math.log1p(FULL_ABUSE_POSTS), abuse_reason(counts)),
    }
    return [
        alerting_pb2.PriorityFactor(
            name=name, value=round(_unit(values[name][0]), 4), weight=weight, reason=values[name][1]
        )
        for name, weight in WEIGHTS.items()
    ]


def priority(weighted: list[alerting_pb2.PriorityFactor]) -> float:
    """Priority in [0,100]."""
    return round(100.0 * _unit(sum(factor.value * factor.weight for factor in weighted)), 2)
