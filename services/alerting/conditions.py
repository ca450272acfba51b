"""When a rule's window fires, against what baseline, and the one sentence that says so.

A window is judged with its own counters and those of the BASELINE_WINDOWS windows before it (as far
as they are known when it is judged). Volume kinds also need the anomaly detector's verdict, which the
caller obtains by feeding the detector the rule's windows in order (see volume.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from civic.listening.v1 import alerting_pb2
from services.alerting.rules import (
    ANGER_SURGE,
    BASELINE_WINDOWS,
    CARDINALITY,
    HIGH_REACH,
    NEGATIVE_SHARE,
    NEW_TERM,
    QUERY_MATCH,
    SENTIMENT_SHIFT,
    VOLUME_DROP,
    VOLUME_SPIKE,
    WindowCounts,
)


@dataclass(frozen=True)
class Trailing:
    """What the baseline windows before a window say."""

    usual: float  # median count, at least 1
    negative_percent: float  # pooled over the baseline windows
    terms: frozenset[str]  # every term seen in them
    known: bool  # at least one baseline window had posts
    # Pooled over the baseline windows' posts with an emotion; None when none had one (no tone model yet).
    anger_percent: float | None = None

    @classmethod
    def of(cls, windows: Mapping[int, WindowCounts], start: int, width: int) -> Trailing:
        before = [windows.get(start - i * width) for i in range(1, BASELINE_WINDOWS + 1)]
        present = [w for w in before if w is not None and w.count > 0]
        total = sum(w.count for w in present)
        toned = sum(w.toned for w in present)
        return cls(
            usual=baseline({s: w.count for s, w in windows.items()}, start, width),
            negative_percent=100.0 * sum(w.negative for w in present) / total if total else 0.0,
            terms=frozenset(term for w in present for term in w.terms),
            known=bool(present),
            anger_percent=100.0 * sum(w.angry for w in present) / toned if toned else None,
        )


def baseline(trailing_counts: Mapping[int, int], start: int, window_seconds: int) -> float:
    """Median count of the BASELINE_WINDOWS windows before `start` (missing ones are 0), at least 1."""
    counts = [trailing_counts.get(start - i * window_seconds, 0) for i in range(1, BASELINE_WINDOWS + 1)]
    return max(float(statistics.median(counts)), 1.0)


def new_terms(rule: alerting_pb2.Rule, counts: WindowCounts, trailing: Trailing) -> list[str]:
    """Terms of the window on at least `threshold` posts and absent from every baseline window, commonest first."""
    if not trailing.known:
        return []  # with no history, every term would look new
    fresh = [t for t, n in counts.terms.items() if n >= rule.threshold and t not in trailing.terms]
    return sorted(fresh, key=lambda t: (-counts.terms[t], t))


def condition_holds(
    rule: alerting_pb2.Rule, counts: WindowCounts, trailing: Trailing, detector_alert: bool = False
) -> bool:
    kind, threshold = rule.kind, rule.threshold
    if kind == QUERY_MATCH:
        return counts.count >= threshold
    if kind == HIGH_REACH:
        return max(counts.max_followers, counts.max_engagement) >= threshold
    if kind == CARDINALITY:
        return len(counts.authors) >= threshold
    if kind == NEW_TERM:
        return bool(new_terms(rule, counts, trailing))
    if kind == VOLUME_DROP:
        return detector_alert and counts.count <= trailing.usual / threshold
    if counts.count < max(rule.min_posts, 1):
        return False
    if kind == VOLUME_SPIKE:
        return detector_alert and counts.count >= threshold * trailing.usual
    if kind == SENTIMENT_SHIFT:
        return trailing.known and counts.negative_percent - trailing.negative_percent >= threshold
    if kind == ANGER_SURGE:
        # Counted over posts with an emotion, so posts enriched before the tone heads existed (or by a
        # model without them) neither dilute the window nor make the first toned window look like a surge.
        if trailing.anger_percent is None or counts.toned < max(rule.min_posts, 1):
            return False
        return counts.anger_percent - trailing.anger_percent >= threshold
    if kind == NEGATIVE_SHARE:
        return counts.negative_percent >= threshold
    return False


def summary(rule: alerting_pb2.Rule, start: int, counts: WindowCounts, trailing: Trailing) -> str:
    """One sentence saying what happened in the window."""
    begin = datetime.fromtimestamp(start, UTC)
    end = datetime.fromtimestamp(start + rule.window_seconds, UTC)
    span = f"between {begin:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
    about = f' matching "{rule.query}"' if rule.query else ""
    usual = trailing.usual
    kind = rule.kind
    if kind == VOLUME_SPIKE:
        return f"{counts.count} posts{about} {span}, {counts.count / usual:.1f}x the usual {usual:g} per window."
    if kind == VOLUME_DROP:
        return f"Only {counts.count} posts{about} {span}, against the usual {usual:g} per window."
    if kind == NEGATIVE_SHARE:
        return f"{counts.negative_percent:.0f}% of {counts.count} posts{about} {span} were negative."
    if kind == SENTIMENT_SHIFT:
        return (
            f"{counts.negative_percent:.0f}% of {counts.count} posts{about} {span} were negative, "
            f"against {trailing.negative_percent:.0f}% before."
        )
    if kind == ANGER_SURGE:
        before = trailing.anger_percent or 0.0
        return (
            f"Anger was the main emotion of {counts.anger_percent:.0f}% of {counts.toned} posts{about} {span}, "
            f"against {before:.0f}% before."
        )
    if kind == NEW_TERM:
        terms = new_terms(rule, counts, trailing)
        shown = ", ".join(f"{t} ({counts.terms[t]} posts)" for t in terms[:3]) or "none left"
        return f"New terms in posts{about} {span}: {shown}."
    if kind == HIGH_REACH:
        return (
            f"A post{about} {span} reached an author with {counts.max_followers:,} followers "
            f"or {counts.max_engagement:,} interactions ({counts.top_post})."
        )
    if kind == CARDINALITY:
        return f"{len(counts.authors)} distinct authors posted{about} {span}."
    return f"{counts.count} posts{about} {span}."
