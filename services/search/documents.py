"""Converting an EnrichedPost to the indexed document and back.

The document is flat and readable on purpose: analysts query it from Kibana or any client, so the
field names are the ones docs/search-mapping.md documents, not protobuf's.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import post_pb2
from services.common.enum_names import EMOTION_WORDS, EMOTIONS, SENTIMENT_WORDS, SENTIMENTS
from services.search import channel_fields
from services.search.mapping import LANGUAGE_ANALYZERS

_FINER_THAN_MICROSECONDS = re.compile(r"\.\d{7}")


def document_id(tenant: str, channel: str, post_id: str) -> str:
    """Stable across deliveries, so indexing the same post again replaces it."""
    return hashlib.sha256(f"{tenant}/{channel}/{post_id}".encode()).hexdigest()


def to_document(enriched: post_pb2.EnrichedPost) -> dict[str, Any]:
    post, enrichment = enriched.post, enriched.enrichment
    doc: dict[str, Any] = {
        "doc_id": document_id(post.tenant, post.channel, post.id),
        "tenant": post.tenant,
        "channel": post.channel,
        "post_id": post.id,
        "source": post.source,
        "author": {
            "id": post.author.id,
            "name": post.author.name,
            "follower_count": post.author.follower_count,
        },
        "reach": post.author.follower_count,
        "text": post.text,
        "display_text": post.display_text,
        "language": post.language,
        "language_confidence": post.language_confidence,
        "url": post.url,
        "engagement": {
            "likes": post.engagement.likes,
            "shares": post.engagement.shares,
            "replies": post.engagement.replies,
        },
        "near_duplicate": post.near_duplicate,
        "redactions": post.redactions,
        "topic": enrichment.topic,
        "topics": list(enrichment.topics),
        "topic_set_version": enrichment.topic_set_version,
        "relevance": [{"topic": item.topic, "score": item.score} for item in enrichment.relevance],
        "model_versions": {
            "encoder": enrichment.model_versions.encoder,
            "sentiment": enrichment.model_versions.sentiment,
            "relevance": enrichment.model_versions.relevance,
            "tone": enrichment.model_versions.tone,
        },
        "indexed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    if post.language in LANGUAGE_ANALYZERS:
        doc[f"text_{post.language}"] = post.text
    if post.HasField("created_at"):
        doc["created_at"] = post.created_at.ToJsonString()
    if post.HasField("geo"):
        doc["geo"] = {"lat": post.geo.lat, "lon": post.geo.lon}
    if enrichment.sentiment in SENTIMENT_WORDS:
        doc["sentiment"] = SENTIMENT_WORDS[enrichment.sentiment]
    if enrichment.HasField("sentiment_scores"):
        scores = enrichment.sentiment_scores
        doc["sentiment_scores"] = {
            "negative": scores.negative, "neutral": scores.neutral, "positive": scores.positive,
        }
    if enrichment.embedding:
        doc["embedding"] = list(enrichment.embedding)
    doc.update(_tone(enrichment))
    doc.update(channel_fields.to_fields(post))
    return doc


def _tone(enrichment: post_pb2.Enrichment) -> dict[str, Any]:
    """The tone fields, only when the tone heads ran: `offensive: false` on a post nobody scored
    would pass it off as checked clean."""
    scored = bool(enrichment.model_versions.tone) or enrichment.emotion in EMOTION_WORDS or enrichment.offensive
    if not scored:
        return {}
    tone: dict[str, Any] = {"offensive": enrichment.offensive, "offensive_score": enrichment.offensive_score}
    if enrichment.emotion in EMOTION_WORDS:
        tone["emotion"] = EMOTION_WORDS[enrichment.emotion]
    if enrichment.HasField("emotion_scores"):
        scores = enrichment.emotion_scores
        tone["emotion_scores"] = {"anger": scores.anger, "joy": scores.joy, "optimism": scores.optimism,
                                  "sadness": scores.sadness}
    return tone


def from_document(source: dict[str, Any]) -> post_pb2.EnrichedPost:
    """The EnrichedPost a document was made from (the embedding only when the source has it)."""
    enriched = post_pb2.EnrichedPost()
    read_document(source, enriched)
    return enriched


def read_document(source: dict[str, Any], into: post_pb2.EnrichedPost) -> None:
    """from_document, written into a message that already sits in a response: building the post
    apart and handing it over would copy it once per level, for every hit of every search."""
    post, enrichment = into.post, into.enrichment
    post.id, post.tenant, post.channel = source["post_id"], source["tenant"], source["channel"]
    post.source = source.get("source", "")
    author = source.get("author", {})
    post.author.SetInParent()
    post.author.id, post.author.name = author.get("id", ""), author.get("name", "")
    post.author.follower_count = author.get("follower_count", 0)
    post.text, post.display_text = source.get("text", ""), source.get("display_text", "")
    post.language, post.language_confidence = source.get("language", ""), source.get("language_confidence", 0.0)
    post.url = source.get("url", "")
    engagement = source.get("engagement", {})
    post.engagement.SetInParent()
    post.engagement.likes, post.engagement.shares = engagement.get("likes", 0), engagement.get("shares", 0)
    post.engagement.replies = engagement.get("replies", 0)
    post.near_duplicate, post.redactions = source.get("near_duplicate", False), source.get("redactions", 0)
    if source.get("created_at"):
        _read_timestamp(source["created_at"], post.created_at)
    if source.get("geo"):
        post.geo.lat, post.geo.lon = source["geo"]["lat"], source["geo"]["lon"]
    channel_fields.read_fields(source, post)
    enrichment.sentiment = SENTIMENTS.get(source.get("sentiment", ""), post_pb2.SENTIMENT_LABEL_UNSPECIFIED)
    for relevance in source.get("relevance", []):
        enrichment.relevance.add(topic=relevance["topic"], score=relevance["score"])
    enrichment.topic = source.get("topic", "")
    enrichment.topics.extend(source.get("topics", []))
    enrichment.topic_set_version = source.get("topic_set_version", 0)
    enrichment.embedding.extend(source.get("embedding", []))
    versions = source.get("model_versions", {})
    enrichment.model_versions.SetInParent()
    enrichment.model_versions.encoder = versions.get("encoder", "")
    enrichment.model_versions.sentiment = versions.get("sentiment", "")
    enrichment.model_versions.relevance = versions.get("relevance", "")
    enrichment.model_versions.tone = versions.get("tone", "")
    enrichment.emotion = EMOTIONS.get(source.get("emotion", ""), post_pb2.EMOTION_UNSPECIFIED)
    enrichment.offensive = source.get("offensive", False)
    enrichment.offensive_score = source.get("offensive_score", 0.0)
    if source.get("sentiment_scores"):
        scores = source["sentiment_scores"]
        enrichment.sentiment_scores.negative = scores["negative"]
        enrichment.sentiment_scores.neutral = scores["neutral"]
        enrichment.sentiment_scores.positive = scores["positive"]
    if source.get("emotion_scores"):
        enrichment.emotion_scores.SetInParent()
        for emotion, score in source["emotion_scores"].items():
            setattr(enrichment.emotion_scores, emotion, score)


def _read_timestamp(text: str, target: Timestamp) -> None:
    """Every hit carries one, and datetime's ISO parser is ~5x faster than protobuf's strptime;
    protobuf's parser keeps the nanoseconds datetime cannot hold."""
    if _FINER_THAN_MICROSECONDS.search(text):
        target.FromJsonString(text)
    else:
        target.FromDatetime(datetime.fromisoformat(text))
