"""Alert rules: validation, which posts a rule considers, event-time windows and when a window fires.

Windows are tumbling and aligned to the epoch, so a window is named by its start alone and the same
posts always land in the same windows, whatever order or batches they arrive in.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from civic.listening.v1 import alerting_pb2, post_pb2
from services.common.errors import InvalidArgument
from services.common.validation import require_tenant

RULE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MIN_WINDOW_S = 60
MAX_WINDOW_S = 604_800
MAX_NAME_CHARS = 200
MAX_QUERY_CHARS = 500
BASELINE_WINDOWS = 24
SAMPLE_POSTS = 5
# Words and hashtags: a hashtag keeps its '#' so that a query can ask for the tag itself.
WORD = re.compile(r"#?\w+")

QUERY_MATCH = alerting_pb2.RULE_KIND_QUERY_MATCH
VOLUME_SPIKE = alerting_pb2.RULE_KIND_VOLUME_SPIKE
NEGATIVE_SHARE = alerting_pb2.RULE_KIND_NEGATIVE_SHARE


def validate_rule(rule: alerting_pb2.Rule, prefix: str = "rule") -> alerting_pb2.Rule:
    """The rule as it will be stored (name defaults to id, unset severity to warning), or InvalidArgument."""
    require_tenant(rule.tenant, f"{prefix}.tenant")
    if not RULE_ID_PATTERN.match(rule.id):
        raise InvalidArgument(f"{prefix}.id", "must be 1-64 letters, digits, '-' or '_'")
    if rule.kind not in (QUERY_MATCH, VOLUME_SPIKE, NEGATIVE_SHARE):
        raise InvalidArgument(f"{prefix}.kind", "must be query_match, volume_spike or negative_share")
    if not MIN_WINDOW_S <= rule.window_seconds <= MAX_WINDOW_S:
        raise InvalidArgument(f"{prefix}.window_seconds", f"must be {MIN_WINDOW_S} to {MAX_WINDOW_S}")
    if not rule.threshold > 0:
        raise InvalidArgument(f"{prefix}.threshold", "must be greater than 0")
    if rule.kind == NEGATIVE_SHARE and not 1 <= rule.threshold <= 100:
        raise InvalidArgument(f"{prefix}.threshold", "is a percent for negative_share: 1 to 100")
    if rule.min_posts < 0:
        raise InvalidArgument(f"{prefix}.min_posts", "must not be negative")
    if len(rule.name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{prefix}.name", f"must be at most {MAX_NAME_CHARS} characters")
    if len(rule.query) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"{prefix}.query", f"must be at most {MAX_QUERY_CHARS} characters")
    if rule.severity not in alerting_pb2.Severity.values():
        raise InvalidArgument(f"{prefix}.severity", "is not a known severity")
    stored = alerting_pb2.Rule()
    stored.CopyFrom(rule)
    stored.name = rule.name.strip() or rule.id
    stored.query = " ".join(rule.query.split())
    if stored.severity == alerting_pb2.SEVERITY_UNSPECIFIED:
        stored.severity = alerting_pb2.SEVERITY_WARNING
    return stored


def text_terms(text: str) -> frozenset[str]:
    """The lower-cased words of a text; a hashtag counts both as '#tag' and as the plain word 'tag'."""
    words = {word.lower() for word in WORD.findall(text)}
    return frozenset(words | {word[1:] for word in words if word.startswith("#")})


def query_terms(query: str) -> frozenset[str]:
    return frozenset(word.lower() for word in WORD.findall(query))


def counting_identity(rule: alerting_pb2.Rule) -> tuple[int, frozenset[str], int]:
    """What a rule's window counters depend on; when it changes, the old counters mean nothing."""
    return (rule.kind, query_terms(rule.query), rule.window_seconds)


def window_start(event_ts: int, window_seconds: int) -> int:
    return event_ts - event_ts % window_seconds


@dataclass(frozen=True)
class Observation:
    """What a window remembers of one post."""

    key: str  # "channel/id", as shown to analysts
    event_ts: int
    negative: bool
    followers: int
    relevance: float

    @classmethod
    def of(cls, enriched: post_pb2.EnrichedPost) -> Observation:
        post = enriched.post
        scores = [topic.score for topic in enriched.enrichment.relevance]
        return cls(
            key=f"{post.channel}/{post.id}",
            event_ts=post.created_at.seconds,
            negative=enriched.enrichment.sentiment == post_pb2.SENTIMENT_LABEL_NEGATIVE,
            followers=max(post.author.follower_count, 0),
            relevance=min(max(scores, default=0.0), 1.0),
        )


@dataclass
class WindowCounts:
    """Counters of one rule's window: enough to decide firing and priority without keeping posts."""

    count: int = 0
    negative: int = 0
    max_followers: int = 0
    max_relevance: float = 0.0
    samples: list[str] = field(default_factory=list)

    def add(self, seen: Observation) -> None:
        self.count += 1
        self.negative += int(seen.negative)
        self.max_followers = max(self.max_followers, seen.followers)
        self.max_relevance = max(self.max_relevance, seen.relevance)
        if len(self.samples) < SAMPLE_POSTS and seen.key not in self.samples:
            self.samples.append(seen.key)

    def merge(self, other: WindowCounts) -> None:
        self.count += other.count
        self.negative += other.negative
        self.max_followers = max(self.max_followers, other.max_followers)
        self.max_relevance = max(self.max_relevance, other.max_relevance)
        for key in other.samples:
            if len(self.samples) < SAMPLE_POSTS and key not in self.samples:
                self.samples.append(key)

    @property
    def negative_percent(self) -> float:
        return 100.0 * self.negative / self.count if self.count else 0.0


def baseline(trailing_counts: Mapping[int, int], start: int, window_seconds: int) -> float:
    """Median count of the BASELINE_WINDOWS windows before `start` (missing ones are 0), at least 1."""
    counts = [trailing_counts.get(start - i * window_seconds, 0) for i in range(1, BASELINE_WINDOWS + 1)]
    return max(float(statistics.median(counts)), 1.0)


def condition_holds(rule: alerting_pb2.Rule, counts: WindowCounts, usual: float) -> bool:
    if rule.kind == QUERY_MATCH:
        return counts.count >= rule.threshold
    if counts.count < max(rule.min_posts, 1):
        return False
    if rule.kind == VOLUME_SPIKE:
        return counts.count >= rule.threshold * usual
    return counts.negative_percent >= rule.threshold


def summary(rule: alerting_pb2.Rule, start: int, counts: WindowCounts, usual: float) -> str:
    """One sentence saying what happened in the window."""
    begin = datetime.fromtimestamp(start, UTC)
    end = datetime.fromtimestamp(start + rule.window_seconds, UTC)
    span = f"between {begin:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
    about = f' matching "{rule.query}"' if rule.query else ""
    if rule.kind == QUERY_MATCH:
        return f"{counts.count} posts{about} {span}."
    if rule.kind == VOLUME_SPIKE:
        return f"{counts.count} posts{about} {span}, {counts.count / usual:.1f}x the usual {usual:g} per window."
    return f"{counts.negative_percent:.0f}% of {counts.count} posts{about} {span} were negative."

