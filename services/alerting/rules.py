"""Alert rules: validation, which posts a rule considers, event-time windows and when a window fires.

Windows are tumbling and aligned to the epoch, so a window is named by its start alone and the same
posts always land in the same windows, whatever order or batches they arrive in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from civic.listening.v1 import alerting_pb2, post_pb2
from services.common import boolean_query, enum_names
from services.common.errors import InvalidArgument
from services.common.validation import require_tenant

RULE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MIN_WINDOW_S = 60
MAX_WINDOW_S = 604_800
MAX_NAME_CHARS = 200
MAX_QUERY_CHARS = 500
BASELINE_WINDOWS = 24
SAMPLE_POSTS = 5
# Distinct authors and terms a window remembers; beyond them a window stops adding new ones.
MAX_AUTHORS = 10_000
MAX_TERMS = 2_000
MAX_LABELS = 20
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,62}")
# Labels the service sets on every alert; a rule cannot override them.
RESERVED_LABELS = frozenset({"tenant", "rule", "kind", "severity", "alertname"})
# Words shorter than this are not candidate new terms (articles, numbers); hashtags always are.
MIN_TERM_CHARS = 4
# Offensive posts a window names in its abuse reason.
ABUSE_SAMPLES = 3

QUERY_MATCH = alerting_pb2.RULE_KIND_QUERY_MATCH
VOLUME_SPIKE = alerting_pb2.RULE_KIND_VOLUME_SPIKE
NEGATIVE_SHARE = alerting_pb2.RULE_KIND_NEGATIVE_SHARE
VOLUME_DROP = alerting_pb2.RULE_KIND_VOLUME_DROP
SENTIMENT_SHIFT = alerting_pb2.RULE_KIND_SENTIMENT_SHIFT
NEW_TERM = alerting_pb2.RULE_KIND_NEW_TERM
HIGH_REACH = alerting_pb2.RULE_KIND_HIGH_REACH
CARDINALITY = alerting_pb2.RULE_KIND_CARDINALITY
ANGER_SURGE = alerting_pb2.RULE_KIND_ANGER_SURGE
KINDS = (
    QUERY_MATCH, VOLUME_SPIKE, NEGATIVE_SHARE, VOLUME_DROP, SENTIMENT_SHIFT, NEW_TERM, HIGH_REACH, CARDINALITY,
    ANGER_SURGE,
)
# Kinds whose threshold is a percent or percentage points.
PERCENT_KINDS = (NEGATIVE_SHARE, SENTIMENT_SHIFT, ANGER_SURGE)
# Kinds scored by the online anomaly detector, fed the rule's closed windows in order.
DETECTOR_KINDS = (VOLUME_SPIKE, VOLUME_DROP)
KIND_WORDS = ", ".join(enum_names.word(alerting_pb2.RuleKind, kind) for kind in KINDS)


def validate_rule(rule: alerting_pb2.Rule, prefix: str = "rule") -> alerting_pb2.Rule:
    """The rule as it will be stored (name defaults to id, unset severity to warning), or InvalidArgument."""
    require_tenant(rule.tenant, f"{prefix}.tenant")
    if not RULE_ID_PATTERN.fullmatch(rule.id):
        raise InvalidArgument(f"{prefix}.id", "must be 1-64 letters, digits, '-' or '_'")
    if rule.kind not in KINDS:
        raise InvalidArgument(f"{prefix}.kind", f"must be one of {KIND_WORDS}")
    if not MIN_WINDOW_S <= rule.window_seconds <= MAX_WINDOW_S:
        raise InvalidArgument(f"{prefix}.window_seconds", f"must be {MIN_WINDOW_S} to {MAX_WINDOW_S}")
    if not rule.threshold > 0:
        raise InvalidArgument(f"{prefix}.threshold", "must be greater than 0")
    if rule.kind in PERCENT_KINDS and not 1 <= rule.threshold <= 100:
        raise InvalidArgument(f"{prefix}.threshold", "is a percent (points) for this kind: 1 to 100")
    if rule.kind == VOLUME_DROP and rule.threshold < 1:
        raise InvalidArgument(f"{prefix}.threshold", "is how many times below the baseline: at least 1")
    if rule.kind == CARDINALITY and rule.threshold > MAX_AUTHORS:
        raise InvalidArgument(f"{prefix}.threshold", f"counts distinct authors: at most {MAX_AUTHORS}")
    if not 0 <= rule.sensitivity < 1:
        raise InvalidArgument(f"{prefix}.sensitivity", "must be in (0, 1), or 0 for the default")
    if rule.escalate_after_seconds < 0:
        raise InvalidArgument(f"{prefix}.escalate_after_seconds", "must not be negative")
    if len(rule.labels) > MAX_LABELS:
        raise InvalidArgument(f"{prefix}.labels", f"at most {MAX_LABELS} labels")
    for name, value in rule.labels.items():
        if not LABEL_NAME.fullmatch(name) or name in RESERVED_LABELS:
            raise InvalidArgument(f"{prefix}.labels", f"{name!r} is not a usable label name")
        if len(value) > MAX_NAME_CHARS:
            raise InvalidArgument(f"{prefix}.labels", f"value of {name!r} is longer than {MAX_NAME_CHARS}")
    if rule.min_posts < 0:
        raise InvalidArgument(f"{prefix}.min_posts", "must not be negative")
    if len(rule.name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{prefix}.name", f"must be at most {MAX_NAME_CHARS} characters")
    boolean_query.parse(rule.query, f"{prefix}.query", MAX_QUERY_CHARS)
    if rule.severity not in alerting_pb2.Severity.values():
        raise InvalidArgument(f"{prefix}.severity", "is not a known severity")
    stored = alerting_pb2.Rule()
    stored.CopyFrom(rule)
    stored.name = rule.name.strip() or rule.id
    stored.query = " ".join(rule.query.split())
    if stored.severity == alerting_pb2.SEVERITY_UNSPECIFIED:
        stored.severity = alerting_pb2.SEVERITY_WARNING
    return stored


def post_document(enriched: post_pb2.EnrichedPost) -> boolean_query.Document:
    """A post as the query language sees it: its text and the values of its keyword fields."""
    post, enrichment = enriched.post, enriched.enrichment
    sentiment = enum_names.word(post_pb2.SentimentLabel, enrichment.sentiment)
    emotion = enum_names.word(post_pb2.Emotion, enrichment.emotion)
    toned = enrichment.emotion != post_pb2.EMOTION_UNSPECIFIED
    return boolean_query.Document.of(
        post.text,
        {
            "channel": [post.channel],
            "source": [post.source],
            "language": [post.language],
            "sentiment": [sentiment] if sentiment else [],
            "topics": list(enrichment.topics) or [enrichment.topic],
            "author": [post.author.name],
            "author.name": [post.author.name],
            "author.id": [post.author.id],
            "near_duplicate": [str(post.near_duplicate).lower()],
            # A model without the tone heads computed neither: such a post has no value for them.
            "emotion": [emotion] if toned else [],
            "offensive": [str(enrichment.offensive).lower()] if toned else [],
            "hashtags": list(post.hashtags),
            "mentions": list(post.mentions),
            "categories": list(post.categories),
            "conversation_id": [post.conversation_id],
            "sensitive": [str(post.sensitive).lower()],
            "service_request.status": [post.service_request.status],
            "service_request.service_code": [post.service_request.service_code],
            "service_request.agency": [post.service_request.agency],
            "official_alert.severity": [post.official_alert.severity],
        },
    )


def counting_identity(rule: alerting_pb2.Rule) -> tuple[int, str, int]:
    """What a rule's window counters depend on; when it changes, the old counters mean nothing."""
    return (rule.kind, rule.query, rule.window_seconds)


def candidate_terms(doc: boolean_query.Document) -> set[str]:
    """Words and hashtags that could be a new narrative: hashtags, and words of MIN_TERM_CHARS or more."""
    words = {word for word in doc.tokens if len(word) >= MIN_TERM_CHARS and not word.isdigit()}
    return words | set(doc.hashtags)


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
    author: str = ""
    engagement: int = 0
    terms: frozenset[str] = frozenset()
    toned: bool = False  # the tone heads computed its emotion
    angry: bool = False  # its most likely emotion is anger
    # The agency topic an offensive post is about ("" if it is not offensive or about none): see abused().
    abuse_topic: str = ""

    @classmethod
    def of(cls, enriched: post_pb2.EnrichedPost, doc: boolean_query.Document) -> Observation:
        post = enriched.post
        scores = [topic.score for topic in enriched.enrichment.relevance]
        engagement = post.engagement.likes + post.engagement.shares + post.engagement.replies
        return cls(
            key=f"{post.channel}/{post.id}",
            event_ts=post.created_at.seconds,
            negative=enriched.enrichment.sentiment == post_pb2.SENTIMENT_LABEL_NEGATIVE,
            followers=max(post.author.follower_count, 0),
            relevance=min(max(scores, default=0.0), 1.0),
            # Without an author id, the post's own key: an anonymous post is one voice.
            author=f"{post.channel}/{post.author.id or post.author.name or post.id}",
            engagement=max(engagement, 0),
            terms=frozenset(candidate_terms(doc)),
            toned=enriched.enrichment.emotion != post_pb2.EMOTION_UNSPECIFIED,
            angry=enriched.enrichment.emotion == post_pb2.EMOTION_ANGER,
            abuse_topic=abused(enriched.enrichment),
        )


def abused(enrichment: post_pb2.Enrichment) -> str:
    """The agency topic an offensive post is addressed to, or "".

    A post is addressed to the agency when the relevance model puts it on one of the agency's configured
    topics (`enrichment.topic`, set when a topic scores at least 0.5): posts carry no mention list, and
    a post about the agency's service is what its staff read and answer. The offensive head's class
    covers insults, abuse, profanity and threats alike.
    """
    return enrichment.topic if enrichment.offensive and enrichment.topic else ""


@dataclass
class WindowCounts:
    """Counters of one rule's window: enough to decide firing and priority without keeping posts."""

    count: int = 0
    negative: int = 0
    max_followers: int = 0
    max_relevance: float = 0.0
    samples: list[str] = field(default_factory=list)
    max_engagement: int = 0
    authors: set[str] = field(default_factory=set)
    terms: dict[str, int] = field(default_factory=dict)
    # The post that set max_followers or max_engagement: the high-reach example.
    top_post: str = ""
    toned: int = 0  # posts with an emotion
    angry: int = 0  # of which anger is the most likely
    abusive: int = 0  # offensive posts addressed to the agency
    abuse_topics: dict[str, int] = field(default_factory=dict)
    abuse_samples: list[str] = field(default_factory=list)

    def add(self, seen: Observation) -> None:
        if max(seen.followers, seen.engagement) > max(self.max_followers, self.max_engagement) or not self.top_post:
            self.top_post = seen.key
        self.count += 1
        self.negative += int(seen.negative)
        self.max_followers = max(self.max_followers, seen.followers)
        self.max_engagement = max(self.max_engagement, seen.engagement)
        self.max_relevance = max(self.max_relevance, seen.relevance)
        if len(self.samples) < SAMPLE_POSTS and seen.key not in self.samples:
            self.samples.append(seen.key)
        if len(self.authors) < MAX_AUTHORS:
            self.authors.add(seen.author)
        for term in seen.terms:
            if term in self.terms or len(self.terms) < MAX_TERMS:
                self.terms[term] = self.terms.get(term, 0) + 1
        self.toned += int(seen.toned)
        self.angry += int(seen.angry)
        if seen.abuse_topic:
            self.abusive += 1
            self.abuse_topics[seen.abuse_topic] = self.abuse_topics.get(seen.abuse_topic, 0) + 1
            if len(self.abuse_samples) < ABUSE_SAMPLES and seen.key not in self.abuse_samples:
                self.abuse_samples.append(seen.key)

    def merge(self, other: WindowCounts) -> None:
        if max(other.max_followers, other.max_engagement) > max(self.max_followers, self.max_engagement):
            self.top_post = other.top_post
        self.top_post = self.top_post or other.top_post
        self.count += other.count
        self.negative += other.negative
        self.max_followers = max(self.max_followers, other.max_followers)
        self.max_engagement = max(self.max_engagement, other.max_engagement)
        self.max_relevance = max(self.max_relevance, other.max_relevance)
        for key in other.samples:
            if len(self.samples) < SAMPLE_POSTS and key not in self.samples:
                self.samples.append(key)
        self.authors |= set(list(other.authors)[: max(MAX_AUTHORS - len(self.authors), 0)])
        for term, count in other.terms.items():
            if term in self.terms or len(self.terms) < MAX_TERMS:
                self.terms[term] = self.terms.get(term, 0) + count
        self.toned += other.toned
        self.angry += other.angry
        self.abusive += other.abusive
        for topic, count in other.abuse_topics.items():
            self.abuse_topics[topic] = self.abuse_topics.get(topic, 0) + count
        for key in other.abuse_samples:
            if len(self.abuse_samples) < ABUSE_SAMPLES and key not in self.abuse_samples:
                self.abuse_samples.append(key)

    @property
    def negative_percent(self) -> float:
        return 100.0 * self.negative / self.count if self.count else 0.0

    @property
    def anger_percent(self) -> float:
        """Share of the posts with an emotion whose most likely emotion is anger."""
        return 100.0 * self.angry / self.toned if self.toned else 0.0


def alert_labels(rule: alerting_pb2.Rule) -> dict[str, str]:
    """What silences, grouping and receivers match on: the rule's own labels and the fixed ones."""
    return {
        **dict(rule.labels),
        "alertname": rule.id,
        "tenant": rule.tenant,
        "rule": rule.id,
        "kind": enum_names.word(alerting_pb2.RuleKind, rule.kind),
        "severity": enum_names.word(alerting_pb2.Severity, rule.severity),
    }
