"""`civic classify`: sentiment, tone, language and topics of texts read on stdin, one JSON line each.

Topics are the defaults (or CIVIC_TOPICS_FILE), or those of `--topics FILE` (descriptions, examples,
queries, thresholds: the format `civic topics put --file` takes), scored by the same code as the
search service's tagging. `--local` runs the model in this process, without the stack.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from civic.listening.v1 import inference_pb2, inference_pb2_grpc, post_pb2
from services.cli.common import stub
from services.common import boolean_query, enum_names
from services.common.language import detect_language
from services.common.relevance.background import Background
from services.common.relevance.definitions import TopicDefinition, load_topics
from services.common.relevance.scoring import Calibration, Tagging, TopicSetScorer
from services.common.relevance.teaching import taught_scorer
from services.common.settings import get_settings

Embed = Callable[[Sequence[str]], np.ndarray]


def classify_texts(texts: list[str], local: bool, topics_file: Path | None, batch_size: int) -> None:
    # A bad topics file is told before a model loads or the stack is called.
    topics = load_topics(topics_file) if topics_file is not None else None
    if local:
        _local(texts, topics, batch_size)
    else:
        _remote(texts, topics, batch_size)


def _scorer(topics: list[TopicDefinition] | None, embed: Embed) -> TopicSetScorer | None:
    if topics is None:
        return None
    return taught_scorer(topics, embed, Background.load(), Calibration.load())


def _tags(scorer: TopicSetScorer, chunk: list[str], vectors: np.ndarray) -> list[Tagging]:
    taggings = scorer.tag(vectors, [boolean_query.Document.of(text) for text in chunk])
    return [tagging if text.strip() else scorer.untagged() for text, tagging in zip(chunk, taggings, strict=True)]


def _local(texts: list[str], topics: list[TopicDefinition] | None, batch_size: int) -> None:
    try:
        from inference.model import EnrichmentModel
    except ImportError as exc:  # the `cli` extra alone: the model's packages are the `inference` extra
        raise RuntimeError(f"--local runs the model in this process and needs the inference extra "
                           f"(pip install 'civic-listening[inference]'): {exc}") from exc

    model = EnrichmentModel.from_settings(get_settings())
    scorer = _scorer(topics, lambda chunk: np.array(model.embed(chunk, is_query=False), dtype=np.float32))
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        results = model.enrich(chunk)
        taggings = _tags(scorer, chunk, np.array([r.embedding for r in results], dtype=np.float32)) if scorer else \
            [Tagging(r.relevance, r.topic, r.topics) for r in results]
        for text, result, tagging in zip(chunk, results, taggings, strict=True):
            tone = result.tone
            emit(text, result.label, result.scores, tone.emotion, tone.emotion_scores, tone.offensive,
                 tone.offensive_score, tagging)


def _remote(texts: list[str], topics: list[TopicDefinition] | None, batch_size: int) -> None:
    settings = get_settings()
    inference = stub(inference_pb2_grpc.InferenceServiceStub, settings.inference_target)

    def embed(chunk: Sequence[str]) -> np.ndarray:
        reply = inference.Embed(inference_pb2.EmbedRequest(texts=list(chunk), is_query=False),
                                timeout=settings.rpc_timeout_s)
        return np.array([list(e.values) for e in reply.embeddings], dtype=np.float32)

    scorer = _scorer(topics, embed)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        reply = inference.Enrich(
            inference_pb2.EnrichRequest(posts=[post_pb2.Post(text=text or " ") for text in chunk]),
            timeout=settings.rpc_timeout_s,
        )
        enrichments = list(reply.enrichments)
        taggings = _tags(scorer, chunk, np.array([list(e.embedding) for e in enrichments], dtype=np.float32)) \
            if scorer else [Tagging([(r.topic, r.score) for r in e.relevance], e.topic, list(e.topics))
                            for e in enrichments]
        for text, enrichment, tagging in zip(chunk, enrichments, taggings, strict=True):
            scores, emotions = enrichment.sentiment_scores, enrichment.emotion_scores
            emit(
                text,
                enum_names.word(post_pb2.SentimentLabel, enrichment.sentiment),
                {"negative": scores.negative, "neutral": scores.neutral, "positive": scores.positive},
                enum_names.word(post_pb2.Emotion, enrichment.emotion),
                {"anger": emotions.anger, "joy": emotions.joy, "optimism": emotions.optimism,
                 "sadness": emotions.sadness},
                enrichment.offensive,
                enrichment.offensive_score,
                tagging,
            )


def emit(
    text: str, label: str, scores: dict[str, float], emotion: str, emotion_scores: dict[str, float],
    offensive: bool, offensive_score: float, tagging: Tagging,
) -> None:
    language, _ = detect_language(text)
    line = {
        "label": label, "scores": {k: round(float(v), 4) for k, v in scores.items()},
        "emotion": emotion, "emotion_scores": {k: round(float(v), 4) for k, v in emotion_scores.items()},
        "offensive": offensive,
        "offensive_score": round(float(offensive_score), 4), "language": language,
        "relevance": {name: round(float(score), 4) for name, score in tagging.relevance},
        "topics": list(tagging.topics),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
