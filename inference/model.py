"""The enrichment model: one encoder pass per post gives its embedding, sentiment, tone and topic relevance.

The encoder's lower layers run once per post. From their output the frozen top layers finish the
L2-normalized, mean-pooled "passage: " embedding, which relevance compares with the topic
descriptions, embedded the same way (short keyword descriptions matched posts better as passages
than as E5 queries, across languages: the figures are in inference/artifacts/README.md); the
fine-tuned sentiment tower gives the sentiment; the tone heads (inference/tone.py) read pooled
features of the same pass. Without a tower file, the sentiment is a linear head over the embedding.
"""

from __future__ import annotations

import hashlib
import os
import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import BertModel

from inference.encoder import ENCODER_VERSION, load_encoder
from inference.relevance import (
    ARTIFACTS_DIR,
    TOPIC_THRESHOLD,
    Background,
    TopicScorer,
    load_topics,
    topics_checksum,
)
from inference.tone import EMOTIONS, NO_TONE, TONE_FILE, Tone, ToneHeads, load_tone_heads, tone_of
from inference.tower import SentimentTower, attention_bias, load_tower, masked_mean, run_layers
from services.common.settings import Settings

M = TypeVar("M", bound=torch.nn.Module)
PAD_ID = 1  # XLM-R's <pad>

LABELS = ("negative", "neutral", "positive")
SENTIMENT_HEAD_FILE = ARTIFACTS_DIR / "sentiment_head.safetensors"
SENTIMENT_TOWER_FILE = ARTIFACTS_DIR / "sentiment_tower.safetensors"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "


@dataclass(frozen=True)
class EnrichmentResult:
    label: str
    scores: dict[str, float]
    relevance: list[tuple[str, float]]
    topic: str
    embedding: list[float]
    tone: Tone


@dataclass
class _Heads:
    """What the heads computed for a list of texts, in text order (fp32, on the CPU)."""

    sentiment: torch.Tensor  # logits [texts, 3]
    emotion: torch.Tensor | None  # probabilities [texts, 4], when tone heads are loaded
    offensive: torch.Tensor | None  # probabilities [texts]


def load_sentiment_head(path: Path = SENTIMENT_HEAD_FILE) -> torch.nn.Linear:
    tensors = load_file(str(path))
    weight, bias = tensors["weight"].float(), tensors["bias"].float()
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": bias})
    return head.eval()


def short_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def quantized(module: M) -> M:
    """int8 dynamic quantization of the linear layers (weights per output channel), in place.

    The FFN output projections stay fp32: their inputs (after GELU) carry the outliers that one
    int8 scale per batch handles badly. Quantizing them too gave embeddings at mean cosine 0.986 to
    fp32 (min 0.972) instead of 0.996 (min 0.993), and results that depend more on the other texts
    of the batch. The cost in accuracy and the speed are measured by bench/sentiment_accuracy.py and
    bench/inference_throughput.py.
    """
    spec = {
        name: torch.ao.quantization.per_channel_dynamic_qconfig
        for name, child in module.named_modules()
        if isinstance(child, torch.nn.Linear) and not _is_ffn_output(name)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that this API moves to torchao
        torch.ao.quantization.quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    return module


def _is_ffn_output(name: str) -> bool:
    return name.endswith("output.dense") and not name.endswith("attention.output.dense")


class EnrichmentModel:
    def __init__(
        self,
        encoder: BertModel,
        tokenizer: Tokenizer,
        sentiment: SentimentTower | torch.nn.Linear,
        topics: dict[str, str],
        background: Background,
        *,
        tone: ToneHeads | None,
        max_seq_length: int,
        batch_size: int,
        versions: dict[str, str],
    ) -> None:
        self._embeddings = encoder.embeddings
        # The tower branches off below the encoder's top layers: those layers run once per post for both.
        depth = len(sentiment.layers) if isinstance(sentiment, SentimentTower) else 0
        split = encoder.config.num_hidden_layers - depth
        self._lower, self._upper = encoder.encoder.layer[:split], encoder.encoder.layer[split:]
        self._tokenizer = tokenizer
        tokenizer.enable_truncation(max_seq_length)
        self._batch_size = batch_size
        self._device = encoder.device
        self._sentiment = sentiment
        if tone is not None and "tower" in tone.features and not isinstance(sentiment, SentimentTower):
            raise ValueError("these tone heads read the sentiment tower's output, and no tower is loaded")
        self._tone = tone
        descriptions = [PASSAGE_PREFIX + description for description in topics.values()]
        self._topics = TopicScorer(list(topics), self._encode(descriptions, with_heads=False)[0], background)
        self.versions = versions

    @classmethod
    def from_settings(cls, settings: Settings) -> EnrichmentModel:
        torch.set_num_threads(settings.torch_threads or os.cpu_count() or 1)
        encoder, tokenizer = load_encoder(settings.model_cache_dir)
        sentiment: SentimentTower | torch.nn.Linear
        if SENTIMENT_TOWER_FILE.exists():
            sentiment, version = load_tower(SENTIMENT_TOWER_FILE, encoder), "umsab-tower"
            digest = short_sha256(SENTIMENT_TOWER_FILE)
        else:
            sentiment, version = load_sentiment_head(), "umsab-logreg"
            digest = short_sha256(SENTIMENT_HEAD_FILE)
        # The tone heads read the tower's pooled output, so they ship and load together with it.
        tone = load_tone_heads() if TONE_FILE.exists() and isinstance(sentiment, SentimentTower) else None
        if torch.cuda.is_available():
            # Half precision halves memory and doubles throughput on GPUs; linear heads stay fp32 (and
            # a head over the embedding stays on the CPU, where the embeddings are gathered).
            typing.cast(torch.nn.Module, encoder).to(device="cuda", dtype=torch.float16)  # in place
            if isinstance(sentiment, SentimentTower):
                sentiment.to(device="cuda")
                sentiment.layers.to(dtype=torch.float16)
            if tone is not None:
                tone.to(device="cuda")
        quantize = settings.inference_quantize and not torch.cuda.is_available()
        if quantize:
            quantized(encoder.encoder)
            if isinstance(sentiment, SentimentTower):
                quantized(sentiment.layers)
        topics = load_topics(settings.topics_file)
        background = Background.load()
        versions = {
            "encoder": ENCODER_VERSION + ("+int8" if quantize else ""),
            "sentiment": f"{version}@{digest}",
            "relevance": f"e5-topics@{topics_checksum(topics, background)}",
            "tone": f"tweeteval-tone@{short_sha256(TONE_FILE)}" if tone is not None else "",
        }
        return cls(
            encoder, tokenizer, sentiment, topics, background, tone=tone,
            max_seq_length=settings.max_seq_length, batch_size=settings.inference_max_batch_size,
            versions=versions,
        )

    def _encode(self, texts: Sequence[str], with_heads: bool) -> tuple[torch.Tensor, _Heads | None]:
        """L2-normalized mean-pooled embeddings and, if asked, what the heads make of them, in text order.

        Texts are sorted by token count and cut into batches of batch_size, so that a batch pads to
        similar lengths (about half the time of a mixed batch on CPU).
        """
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda index: len(encodings[index].ids))
        embeddings = torch.empty(len(texts), self._embeddings.word_embeddings.embedding_dim)
        heads = _Heads(torch.empty(len(texts), len(LABELS)), None, None) if with_heads else None
        if heads is not None and self._tone is not None:
            heads.emotion, heads.offensive = torch.empty(len(texts), len(EMOTIONS)), torch.empty(len(texts))
        with torch.inference_mode():
            for start in range(0, len(order), self._batch_size):
                batch = order[start : start + self._batch_size]
                width = max(len(encodings[index].ids) for index in batch)
                ids = torch.full((len(batch), width), PAD_ID, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, index in enumerate(batch):
                    ids[row, : len(encodings[index].ids)] = torch.tensor(encodings[index].ids)
                    mask[row, : len(encodings[index].ids)] = 1
                ids, mask = ids.to(self._device), mask.to(self._device)
                hidden = self._embeddings(input_ids=ids)
                bias = attention_bias(mask, hidden.dtype)
                shared = run_layers(self._lower, hidden, bias)
                top = run_layers(self._upper, shared, bias)
                normalized = torch.nn.functional.normalize(masked_mean(top.float(), mask), dim=-1)
                embeddings[batch] = normalized.cpu()
                if heads is not None and isinstance(self._sentiment, SentimentTower):
                    pooled = self._sentiment.pooled(shared, mask, bias)
                    heads.sentiment[batch] = self._sentiment.head(pooled).cpu()
                    if self._tone is not None and heads.emotion is not None and heads.offensive is not None:
                        features = {"tower": pooled, "embedding": normalized,
                                    "shared": masked_mean(shared.float(), mask)}
                        emotion, offensive = self._tone(features)
                        heads.emotion[batch], heads.offensive[batch] = emotion.cpu(), offensive.cpu()
            if heads is not None and isinstance(self._sentiment, torch.nn.Linear):
                heads.sentiment = self._sentiment(embeddings)
        return embeddings, heads

    def embed(self, texts: Sequence[str], is_query: bool) -> list[list[float]]:
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        vectors: list[list[float]] = self._encode([prefix + text for text in texts], with_heads=False)[0].tolist()
        return vectors

    def enrich(self, texts: Sequence[str]) -> list[EnrichmentResult]:
        if not texts:
            return []
        embeddings, heads = self._encode([PASSAGE_PREFIX + text for text in texts], with_heads=True)
        assert heads is not None
        with torch.inference_mode():
            probabilities = torch.softmax(heads.sentiment, dim=-1).tolist()
            relevance = self._topics.scores(embeddings).tolist()
        if heads.emotion is not None and heads.offensive is not None:
            tones = [tone_of(emotion, offensive)
                     for emotion, offensive in zip(heads.emotion.tolist(), heads.offensive.tolist(), strict=True)]
        else:
            tones = [NO_TONE] * len(texts)
        vectors = embeddings.tolist()
        return [
            self._result(text, probs, scores, vector, tone)
            for text, probs, scores, vector, tone in zip(texts, probabilities, relevance, vectors, tones, strict=True)
        ]

    def _result(
        self, text: str, probabilities: list[float], relevance: list[float], embedding: list[float], tone: Tone
    ) -> EnrichmentResult:
        if not text.strip():
            # Nothing was said: no opinion, no tone and no topic, whatever the encoder makes of the bare prefix.
            probabilities = [float(label == "neutral") for label in LABELS]
            relevance = [0.0] * len(relevance)
            tone = NO_TONE
        ranked = sorted(zip(self._topics.names, relevance, strict=True), key=lambda pair: pair[1], reverse=True)
        best_topic, best_score = ranked[0]
        return EnrichmentResult(
            label=LABELS[max(range(len(LABELS)), key=probabilities.__getitem__)],
            scores=dict(zip(LABELS, probabilities, strict=True)),
            relevance=ranked,
            topic=best_topic if best_score >= TOPIC_THRESHOLD else "",
            embedding=embedding,
            tone=tone,
        )
