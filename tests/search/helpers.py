"""Posts and readers shared by the search tests: the test modules import these, never each other."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import post_pb2

NEG, NEU, POS = post_pb2.SENTIMENT_LABEL_NEGATIVE, post_pb2.SENTIMENT_LABEL_NEUTRAL, post_pb2.SENTIMENT_LABEL_POSITIVE
ANGER, JOY, OPTIMISM, SADNESS = (post_pb2.EMOTION_ANGER, post_pb2.EMOTION_JOY, post_pb2.EMOTION_OPTIMISM,
                                 post_pb2.EMOTION_SADNESS)
BASE_SECONDS = 1_763_000_000


def embedding(seed_text: str) -> list[float]:
    """A deterministic 384-dim unit vector, as the encoder would produce."""
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:4], "big")
    vector = np.random.default_rng(seed).standard_normal(384)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()


def enriched(
    tenant: str, post_id: str, text: str, *, sentiment: post_pb2.SentimentLabel = NEU, language: str = "en",
    channel_name: str = "mastodon",
    topic: str = "", minute: int = 0, followers: int = 10, source: str = "#cityhall",
) -> post_pb2.EnrichedPost:
    created = Timestamp()
    created.FromSeconds(BASE_SECONDS + minute * 60)
    scores = {NEG: (0.8, 0.15, 0.05), NEU: (0.1, 0.8, 0.1), POS: (0.05, 0.15, 0.8)}[sentiment]
    return post_pb2.EnrichedPost(
        post=post_pb2.Post(
            id=post_id, tenant=tenant, channel=channel_name, source=source,
            author=post_pb2.Author(id=f"acct-{post_id}", name=f"Resident {post_id}", follower_count=followers),
            text=text, language=language, language_confidence=0.97, created_at=created,
            url=f"https://social.example.org/@resident/{post_id}",
            engagement=post_pb2.Engagement(likes=3, shares=1, replies=2),
        ),
        enrichment=post_pb2.Enrichment(
            sentiment=sentiment,
            sentiment_scores=post_pb2.SentimentScores(negative=scores[0], neutral=scores[1], positive=scores[2]),
            relevance=[post_pb2.TopicRelevance(topic=topic or "general", score=0.9 if topic else 0.2)],
            topic=topic,
            topics=[topic] if topic else [],
            embedding=embedding(text),
            model_versions=post_pb2.ModelVersions(
                encoder="multilingual-e5-small", sentiment="head@abc", relevance="r@1"
            ),
        ),
    )


def corpus(tenant: str) -> list[post_pb2.EnrichedPost]:
    return [
        enriched(tenant, "p1", "The bus on route 12 was forty minutes late again this morning, unacceptable.",
                 sentiment=NEG, topic="transit", minute=1, followers=1200),
        enriched(tenant, "p2", "Thanks to the crews who fixed the streetlights on Elm Street so quickly!",
                 sentiment=POS, topic="streetlights", minute=2, followers=40, channel_name="reddit", source="r/city"),
        enriched(tenant, "p3", "Does anyone know when the passport office reopens after the holiday?",
                 sentiment=NEU, topic="passports", minute=3, followers=5),
        enriched(tenant, "p4", "Les manifestations devant la mairie ont bloqué la circulation toute la journée.",
                 sentiment=NEG, language="fr", topic="transit", minute=4, followers=300, channel_name="rss",
                 source="https://news.example.org/feed"),
        enriched(tenant, "p5", "Route 12 bus drivers were friendly and on time today, nice change.",
                 sentiment=POS, topic="transit", minute=5, followers=80),
    ]


def toned(tenant: str, post_id: str, text: str, emotion: post_pb2.Emotion, offensive_score: float,
          minute: int, **kwargs: object) -> post_pb2.EnrichedPost:
    post = enriched(tenant, post_id, text, minute=minute, **kwargs)  # type: ignore[arg-type]
    scores = {name: 0.1 for name in ("anger", "joy", "optimism", "sadness")}
    scores[post_pb2.Emotion.Name(emotion).removeprefix("EMOTION_").lower()] = 0.7
    post.enrichment.emotion = emotion
    post.enrichment.emotion_scores.CopyFrom(post_pb2.EmotionScores(**scores))
    post.enrichment.offensive_score = offensive_score
    post.enrichment.offensive = offensive_score >= 0.5
    post.enrichment.model_versions.tone = "tone@1234abcd"
    return post


def tone_corpus(tenant: str) -> list[post_pb2.EnrichedPost]:
    return [
        toned(tenant, "t1", "This useless council wasted our money on the stupid bridge again.", ANGER, 0.91,
              minute=1, sentiment=NEG),
        toned(tenant, "t2", "The bus driver was rude and the depot ignored my complaint.", ANGER, 0.12,
              minute=2, sentiment=NEG),
        toned(tenant, "t3", "Lovely new playground in the park, the kids are thrilled!", JOY, 0.02,
              minute=3, sentiment=POS),
        toned(tenant, "t4", "The new bus lanes should make commuting better next year.", OPTIMISM, 0.03,
              minute=65, sentiment=POS),
        toned(tenant, "t5", "Our library branch closes for good, a sad day for the neighbourhood.", SADNESS,
              0.05, minute=70),
        toned(tenant, "t6", "Idiots at the permit office lost my file, what a bunch of clowns.", ANGER, 0.77,
              minute=75, sentiment=NEG),
        # Enriched by a model without the tone heads: no emotion, and not claimed to be clean.
        enriched(tenant, "t7", "When is bulk waste collection on our street?", minute=80),
    ]


DOC = Path(__file__).resolve().parents[2] / "docs" / "search-mapping.md"
ROW = re.compile(r"^\| `([\w.]+)` \| `(\w+)` \|", re.MULTILINE)


def documented_fields(section: str = "## Fields") -> dict[str, str]:
    """The field table of one section of the doc."""
    text = DOC.read_text()
    body = text[text.index(section) + len(section):]
    return dict(ROW.findall(body[: body.find("\n## ")] if "\n## " in body else body))


def flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    fields = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        fields[path] = spec.get("type", "object")
        if "properties" in spec:
            fields.update(flatten(spec["properties"], f"{path}."))
        for sub, sub_spec in spec.get("fields", {}).items():
            fields[f"{path}.{sub}"] = sub_spec["type"]
    return fields
