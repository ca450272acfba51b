"""Messages of the gRPC services as the JSON the front end reads.

Written out field by field rather than with MessageToDict: 64-bit counts stay numbers, enums become
short lower-case words, unset times become null, and links that are not http(s) are dropped, so
the browser never has to second-guess a value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import alerting_pb2, ingestion_pb2, post_pb2, search_pb2, topics_pb2
from services.common import enum_names

JSON = dict[str, Any]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(stamp: Timestamp, present: bool = True) -> str | None:
    """An ISO 8601 UTC time; None for an unset timestamp."""
    if not present or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return iso(stamp.ToDatetime(tzinfo=UTC))


def safe_url(url: str) -> str | None:
    return url if url.startswith(("https://", "http://")) else None


def post(enriched: post_pb2.EnrichedPost) -> JSON:
    p, e = enriched.post, enriched.enrichment
    has_tone = e.emotion != post_pb2.EMOTION_UNSPECIFIED
    return {
        "id": p.id,
        "channel": p.channel,
        "source": p.source,
        "author": {"id": p.author.id, "name": p.author.name, "followers": p.author.follower_count},
        "text": p.display_text or p.text,
        "language": p.language,
        "created_at": when(p.created_at, p.HasField("created_at")),
        "url": safe_url(p.url),
        "engagement": {"likes": p.engagement.likes, "shares": p.engagement.shares, "replies": p.engagement.replies},
        "near_duplicate": p.near_duplicate,
        "sentiment": enum_names.word(post_pb2.SentimentLabel, e.sentiment) or None,
        "sentiment_scores": {"negative": e.sentiment_scores.negative, "neutral": e.sentiment_scores.neutral,
                             "positive": e.sentiment_scores.positive},
        "topic": e.topic,
        "topics": list(e.topics),
        "emotion": (enum_names.word(post_pb2.Emotion, e.emotion) or None) if has_tone else None,
        "emotion_scores": {"anger": e.emotion_scores.anger, "joy": e.emotion_scores.joy,
                           "optimism": e.emotion_scores.optimism, "sadness": e.emotion_scores.sadness}
        if has_tone else None,
        "offensive": e.offensive if has_tone else None,
        "offensive_score": e.offensive_score if has_tone else None,
    }


def hit(found: search_pb2.SearchHit) -> JSON:
    return {**post(found.post), "score": found.score, "highlights": list(found.highlights)}


def factor(item: alerting_pb2.PriorityFactor) -> JSON:
    return {"name": item.name, "value": item.value, "weight": item.weight,
            "points": round(100.0 * item.value * item.weight, 2)}


def alert(a: alerting_pb2.Alert) -> JSON:
    return {
        "id": a.id,
        "rule_id": a.rule_id,
        "rule_name": a.rule_name,
        "severity": enum_names.word(alerting_pb2.Severity, a.severity) or "warning",
        "state": enum_names.word(alerting_pb2.AlertState, a.state) or None,
        "summary": a.summary,
        "window_start": when(a.window_start),
        "fired_at": when(a.fired_at),
        "post_count": a.post_count,
        "sample_post_ids": list(a.sample_post_ids),
        "priority": a.priority,
        "priority_factors": sorted((factor(f) for f in a.priority_factors), key=lambda f: -f["points"]),
        "labels": dict(a.labels),
        "resolved_at": when(a.resolved_at),
        "resolved_by": a.resolved_by,
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": when(a.acknowledged_at),
        "assignee": a.assignee,
        "assigned_by": a.assigned_by,
        "assigned_at": when(a.assigned_at),
        "escalated_at": when(a.escalated_at),
        "silenced_by": list(a.silenced_by),
        "term": a.term,
    }


def event(e: alerting_pb2.AlertEvent) -> JSON:
    return {"sequence": e.sequence, "kind": enum_names.word(alerting_pb2.AlertEventKind, e.kind) or None,
            "at": when(e.at), "alert": alert(e.alert)}


def silence(s: alerting_pb2.Silence) -> JSON:
    return {
        "id": s.id,
        "matchers": [
            {"name": m.name, "value": m.value,
             "operator": enum_names.word(alerting_pb2.MatchOperator, m.operator) or "equal"}
            for m in s.matchers
        ],
        "starts_at": when(s.starts_at),
        "ends_at": when(s.ends_at),
        "created_by": s.created_by,
        "comment": s.comment,
    }


def source(s: ingestion_pb2.Source) -> JSON:
    status = s.status
    return {
        "id": s.id,
        "name": s.name,
        "kind": s.kind,
        "url": s.url,
        "params": dict(s.params),
        "has_secret": s.has_secret,
        "interval_s": s.interval_s,
        "state": enum_names.word(ingestion_pb2.SourceState, s.state) or None,
        "created_at": when(s.created_at),
        "status": {
            "last_error": status.last_error,
            "last_polled_at": when(status.last_polled_at),
            "polls": status.polls,
            "accepted": status.accepted,
            "duplicates": status.duplicates,
            "rejected": status.rejected,
            "skipped": status.skipped,
            "errors": status.errors,
        },
    }


def failed_post(f: ingestion_pb2.FailedPost) -> JSON:
    return {"channel": f.channel, "post_id": f.post_id, "reason": f.reason, "failed_at": when(f.failed_at)}


def bucket(b: search_pb2.AggregateBucket) -> JSON:
    return {"key": b.key, "count": b.count, "share": b.share, "label": b.label, "reach": b.reach,
            "score": b.score, "background_count": b.background_count}


def quality(q: topics_pb2.TopicQuality) -> JSON:
    return {"scorer": enum_names.word(topics_pb2.TopicScorer, q.scorer) or None, "relevant_marks": q.relevant_marks,
            "not_relevant_marks": q.not_relevant_marks, "marks_needed": q.marks_needed, "precision": q.precision,
            "recall": q.recall, "f1": q.f1, "folds": q.folds}


def topic(t: topics_pb2.Topic) -> JSON:
    return {"name": t.name, "description": t.description, "examples": list(t.examples),
            "counter_examples": list(t.counter_examples), "query": t.query, "threshold": t.threshold,
            "version": t.version, "updated_at": when(t.updated_at), "updated_by": t.updated_by,
            "quality": quality(t.quality)}


def topic_set(s: topics_pb2.TopicSet) -> JSON:
    return {"version": s.version, "defaults": s.defaults, "topics": [topic(t) for t in s.topics]}


def tagging_job(j: topics_pb2.TaggingJob) -> JSON:
    return {"id": j.id, "kind": enum_names.word(topics_pb2.TaggingJobKind, j.kind) or None,
            "state": enum_names.word(topics_pb2.TaggingJobState, j.state) or None,
            "topic_set_version": j.topic_set_version, "total": j.total, "processed": j.processed,
            "changed": j.changed, "posts_per_second": j.posts_per_second, "eta_seconds": j.eta_seconds,
            "created_at": when(j.created_at), "finished_at": when(j.finished_at), "error": j.error,
            "reason": j.reason}


def mark(m: topics_pb2.TopicMark) -> JSON:
    return {"channel": m.channel, "post_id": m.post_id, "relevant": m.relevant, "by": m.by,
            "marked_at": when(m.marked_at), "text": m.text}
