"""Posts, rules and a started server shared by the alerting tests: the test modules import these, never
each other (the `start`, `alerting` and `receiver` fixtures built on them are in this folder's conftest.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

import grpc

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc, post_pb2
from services.alerting.server import build_server
from services.alerting.service import open_alerting
from services.common.settings import Settings

FIRING = alerting_pb2.ALERT_STATE_FIRING
RESOLVED = alerting_pb2.ALERT_STATE_RESOLVED
MONDAY = datetime(2026, 11, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
ANGER = post_pb2.EMOTION_ANGER
JOY = post_pb2.EMOTION_JOY


def enriched(
    post_id: str,
    at: datetime,
    text: str = "The bus was late again this morning.",
    *,
    tenant: str = "city-a",
    negative: bool = False,
    followers: int = 0,
    relevance: float = 0.0,
) -> post_pb2.EnrichedPost:
    post = post_pb2.Post(id=post_id, tenant=tenant, channel="mastodon", text=text)
    post.author.follower_count = followers
    post.created_at.FromDatetime(at)
    label = post_pb2.SENTIMENT_LABEL_NEGATIVE if negative else post_pb2.SENTIMENT_LABEL_NEUTRAL
    enrichment = post_pb2.Enrichment(sentiment=label)
    if relevance:
        enrichment.relevance.add(topic="transit", score=relevance)
    return post_pb2.EnrichedPost(post=post, enrichment=enrichment)


def spread(prefix: str, count: int, start: datetime, width: timedelta, **fields: Any) -> list[post_pb2.EnrichedPost]:
    """`count` posts evenly spread over [start, start + width)."""
    return [enriched(f"{prefix}-{i}", start + width * i / count, **fields) for i in range(count)]


def rule(rule_id: str, kind: str, **fields: Any) -> alerting_pb2.Rule:
    values: dict[str, Any] = {"tenant": "city-a", "window_seconds": 3600, "threshold": 1.0, **fields}
    return alerting_pb2.Rule(id=rule_id, kind=f"RULE_KIND_{kind.upper()}", **values)


class Running:
    """A started alerting server on a free port over the given state file, and a client stub."""

    def __init__(self, settings: Settings) -> None:
        self.alerting = open_alerting(settings)
        self.server = build_server(settings, self.alerting, port=0).start()
        self.target = f"127.0.0.1:{self.server.port}"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = alerting_pb2_grpc.AlertingServiceStub(self.channel)

    def put(self, *rules: alerting_pb2.Rule) -> list[alerting_pb2.Rule]:
        return [self.stub.PutRule(alerting_pb2.PutRuleRequest(rule=r), timeout=10).rule for r in rules]

    def evaluate(self, posts: list[post_pb2.EnrichedPost]) -> alerting_pb2.EvaluatePostsResponse:
        return self.stub.EvaluatePosts(alerting_pb2.EvaluatePostsRequest(posts=posts), timeout=30)

    def alerts(self, tenant: str = "city-a", limit: int = 0) -> list[alerting_pb2.Alert]:
        return list(self.stub.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=tenant, limit=limit), timeout=10).alerts)

    def rules(self, tenant: str = "city-a") -> list[alerting_pb2.Rule]:
        return list(self.stub.ListRules(alerting_pb2.ListRulesRequest(tenant=tenant), timeout=10).rules)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0)
        self.alerting.close()


def hourly_baseline(hours: int, per_hour: int, start: datetime = MONDAY) -> list[post_pb2.EnrichedPost]:
    return [p for h in range(hours) for p in spread(f"base-{start:%d%H}-{h}", per_hour, start + h * HOUR, HOUR)]


def toned(
    post_id: str, at: datetime, emotion: int = JOY, *, offensive: bool = False, topic: str = "", **fields: Any
) -> post_pb2.EnrichedPost:
    """A post as the tone heads leave it: an emotion, and whether it is offensive; `topic` is the agency topic
    the relevance model put it on (its scores come from enriched's `relevance`)."""
    post = enriched(post_id, at, **fields)
    post.enrichment.emotion = emotion  # type: ignore[assignment]
    post.enrichment.offensive = offensive
    post.enrichment.offensive_score = 0.9 if offensive else 0.1
    post.enrichment.topic = topic
    return post


def fire(running: Running, hours: range, text: str = "pothole on 5th") -> list[alerting_pb2.Alert]:
    """One post per hour: one query_match alert per hour window."""
    posts = [enriched(f"p-{h}-{text[:3]}", MONDAY + h * HOUR, text) for h in hours]
    return list(running.evaluate(posts).fired)


def matcher(name: str, value: str, op: str = "EQUAL") -> alerting_pb2.Matcher:
    return alerting_pb2.Matcher(name=name, value=value, operator=f"MATCH_OPERATOR_{op}")  # type: ignore[arg-type]


# The webhook receiver (the `receiver` fixture in conftest.py) and fast notifier ticks.
SECRET = "s3cret-shared-with-the-receiver"
FAST = {"alerting_tick_s": 0.05, "webhook_backoff_base_s": 0.1}


@dataclass
class Received:
    at: float
    body: bytes
    signed: bool
    key: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server that checks X-Civic-Signature and answers 503 to its first `fail_first` requests."""

    fail_first: int = 0
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self) -> list[Received]:
        return self.requests[self.fail_first:]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.accepted()) < count:
            assert time.monotonic() < deadline, f"{len(self.accepted())} of {count} notifications arrived"
            time.sleep(0.02)
        return self.accepted()


def hook(url: str, **fields: Any) -> alerting_pb2.PutWebhookRequest:
    values = {"id": "ops", "tenant": "city-a", "url": url, "secret": SECRET, **fields}
    return alerting_pb2.PutWebhookRequest(webhook=alerting_pb2.Webhook(**values))
