"""The enrichment model: one encoder pass per post gives its embedding, sentiment and topic relevance.

Everything reads the same L2-normalized, mean-pooled "passage: " embedding: the sentiment head is a
linear layer over it (inference/train_sentiment.py) and relevance compares it with the topic
descriptions, embedded the same way: short keyword descriptions matched posts better as passages
than as E5 queries, across languages (the figures are in inference/artifacts/README.md).
"""

from __future__ import annotations

import hashlib
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import BertModel

from inference.encoder import ENCODER_VERSION, load_encoder, mean_pooled
from inference.relevance import (
    ARTIFACTS_DIR,
    TOPIC_THRESHOLD,
    Background,
    TopicScorer,
    load_topics,
    topics_checksum,
)
from services.common.settings import Settings

LABELS = ("negative", "neutral", "positive")
SENTIMENT_HEAD_FILE = ARTIFACTS_DIR / "sentiment_head.safetensors"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "


@dataclass(frozen=True)
class EnrichmentResult:
    label: str
    scores: dict[str, float]
    relevance: list[tuple[str, float]]
    topic: str
    embedding: list[float]


def load_sentiment_head(path: Path = SENTIMENT_HEAD_FILE) -> torch.nn.Linear:
    tensors = load_file(str(path))
    weight, bias = tensors["weight"].float(), tensors["bias"].float()
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": bias})
    return head.eval()


def short_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class EnrichmentModel:
    def __init__(
        self,
        encoder: BertModel,
        tokenizer: Tokenizer,
        sentiment_head: torch.nn.Linear,
        topics: dict[str, str],
        background: Background,
        *,
        max_seq_length: int,
        batch_size: int,
        versions: dict[str, str],
    ) -> None:
        self._encoder = encoder
        self._tokenizer = tokenizer
        self._max_seq_length = max_seq_length
        self._batch_size = batch_size
        device = encoder.device
        self._head = sentiment_head.to(device)
        descriptions = [PASSAGE_PREFIX + description for description in topics.values()]
        self._topics = TopicScorer(list(topics), self._pooled(descriptions), background)
        self.versions = versions

    @classmethod
    def from_settings(cls, settings: Settings) -> EnrichmentModel:
        torch.set_num_threads(settings.torch_threads or os.cpu_count() or 1)
        encoder, tokenizer = load_encoder(settings.model_cache_dir)
        if torch.cuda.is_available():
            # Half precision halves memory and doubles throughput on GPUs; the head stays fp32.
            typing.cast(torch.nn.Module, encoder).to(device="cuda", dtype=torch.float16)  # in place
        topics = load_topics(settings.topics_file)
        background = Background.load()
        versions = {
            "encoder": ENCODER_VERSION,
            "sentiment": f"umsab-logreg@{short_sha256(SENTIMENT_HEAD_FILE)}",
            "relevance": f"e5-topics@{topics_checksum(topics, background)}",
        }
        return cls(
            encoder, tokenizer, load_sentiment_head(), topics, background,
            max_seq_length=settings.max_seq_length, batch_size=settings.inference_max_batch_size,
            versions=versions,
        )

    def _pooled(self, texts: Sequence[str]) -> torch.Tensor:
        return mean_pooled(
            self._encoder, self._tokenizer, texts, max_length=self._max_seq_length, batch_size=self._batch_size
        )

    def embed(self, texts: Sequence[str], is_query: bool) -> list[list[float]]:
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        vectors: list[list[float]] = self._pooled([prefix + text for text in texts]).cpu().tolist()
        return vectors

    def enrich(self, texts: Sequence[str]) -> list[EnrichmentResult]:
        if not texts:
            return []
        embeddings = self._pooled([PASSAGE_PREFIX + text for text in texts])
        with torch.inference_mode():
            probabilities = torch.softmax(self._head(embeddings), dim=-1).cpu().tolist()
            relevance = self._topics.scores(embeddings).cpu().tolist()
        vectors = embeddings.cpu().tolist()
        return [
            self._result(text, probs, scores, vector)
            for text, probs, scores, vector in zip(texts, probabilities, relevance, vectors, strict=True)
        ]

    def _result(
        self, text: str, probabilities: list[float], relevance: list[float], embedding: list[float]
    ) -> EnrichmentResult:
        if not text.strip():
            # Nothing was said: no opinion and no topic, whatever the encoder makes of the bare prefix.
            probabilities = [float(label == "neutral") for label in LABELS]
            relevance = [0.0] * len(relevance)
        ranked = sorted(zip(self._topics.names, relevance, strict=True), key=lambda pair: pair[1], reverse=True)
        best_topic, best_score = ranked[0]
        return EnrichmentResult(
            label=LABELS[max(range(len(LABELS)), key=probabilities.__getitem__)],
            scores=dict(zip(LABELS, probabilities, strict=True)),
            relevance=ranked,
            topic=best_topic if best_score >= TOPIC_THRESHOLD else "",
            embedding=embedding,
        )
