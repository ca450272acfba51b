"""The enrichment model: one encoder pass per post gives its embedding, sentiment, tone and topic relevance.

The encoder's lower layers run once per post. From their output the frozen top layers finish the
L2-normalized, mean-pooled "passage: " embedding, which relevance (services/common/relevance)
scores against the default topics, embedded the same way (short keyword descriptions matched posts
better as passages than as E5 queries, across languages: the figures are in
inference/artifacts/README.md); the search service scores it again against the tenant's own topics
when it indexes the post. The
fine-tuned sentiment tower gives the sentiment; the tone heads (inference/tone.py) read pooled
features of the same pass. Without a tower file, the sentiment is a linear head over the embedding.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from inference.encoder import ENCODER_VERSION, build_into, load_encoder
from inference.runtime import EncoderPass, OnnxPass, Runtime, export_graph, graph_path, padded
from inference.shipped import ARTIFACTS_DIR
from inference.tone import NO_TONE, TONE_FILE, Tone, ToneHeads, load_tone_heads, tone_of
from inference.tower import load_tower
from services.common.relevance.background import Background
from services.common.relevance.definitions import TopicDefinition, load_topics
from services.common.relevance.scoring import Calibration, TopicSetScorer, compile_topics, set_checksum
from services.common.settings import Settings

M = TypeVar("M", bound=torch.nn.Module)
log = logging.getLogger(__name__)

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
    topics: list[str]
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
        encoder_pass: EncoderPass | OnnxPass,
        tokenizer: Tokenizer,
        head: torch.nn.Linear | None,
        topics: Sequence[TopicDefinition],
        background: Background,
        calibration: Calibration,
        *,
        tone: ToneHeads | None,
        max_seq_length: int,
        batch_size: int,
        versions: dict[str, str],
    ) -> None:
        """head: the linear sentiment head over the embedding, for a pass without a sentiment tower."""
        self._pass = encoder_pass
        self._tokenizer = tokenizer
        tokenizer.enable_truncation(max_seq_length)
        self._batch_size = batch_size
        self._head = head
        if tone is not None and "tower" in tone.features and head is not None:
            raise ValueError("these tone heads read the sentiment tower's output, and no tower is loaded")
        self._tone = tone
        self.topics = TopicSetScorer(compile_topics(topics, self._embed_passages), background, calibration)
        self.versions = versions

    @classmethod
    def from_settings(cls, settings: Settings) -> EnrichmentModel:
        threads = settings.torch_threads or os.cpu_count() or 1
        # CUDA keeps the torch fp16 path, whatever the runtime setting says.
        runtime: Runtime = "torch" if torch.cuda.is_available() else settings.inference_runtime
        # Beside ONNX Runtime, torch only runs the tone heads and topic scoring: a few [batch, 384]
        # products, which a second thread pool slows down (its threads wait for the cores ORT's hold).
        torch.set_num_threads(threads if runtime == "torch" else 1)
        tower_file = SENTIMENT_TOWER_FILE if SENTIMENT_TOWER_FILE.exists() else None
        head = None if tower_file is not None else load_sentiment_head()
        encoder_pass: EncoderPass | OnnxPass
        if runtime == "torch":
            encoder_pass, tokenizer, quantize = _torch_pass(settings, tower_file)
            encoder_version = ENCODER_VERSION + ("+int8" if quantize else "")
        else:
            encoder_pass, tokenizer = _onnx_pass(settings, tower_file, runtime, threads)
            encoder_version = f"{ENCODER_VERSION}+{runtime}"
        # The tone heads read the tower's pooled output, so they ship and load together with it.
        tone = load_tone_heads() if TONE_FILE.exists() and tower_file is not None else None
        if tone is not None and torch.cuda.is_available():
            tone.to(device="cuda")
        topics = load_topics(settings.topics_file)
        background, calibration = Background.load(), Calibration.load()
        sentiment_version = "umsab-tower" if tower_file is not None else "umsab-logreg"
        versions = {
            "encoder": encoder_version,
            "sentiment": f"{sentiment_version}@{short_sha256(tower_file or SENTIMENT_HEAD_FILE)}",
            "relevance": f"default-topics@{set_checksum(topics, background, calibration)}",
            "tone": f"tweeteval-tone@{short_sha256(TONE_FILE)}" if tone is not None else "",
        }
        return cls(
            encoder_pass, tokenizer, head, topics, background, calibration, tone=tone,
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
        embeddings, sentiment, emotion, offensive = [], [], [], []
        with torch.inference_mode():
            for start in range(0, len(order), self._batch_size):
                ids, mask = padded([encodings[index].ids for index in order[start : start + self._batch_size]])
                output = self._pass.run(ids, mask, heads=with_heads and self._head is None)
                embeddings.append(output.embedding.cpu())
                if with_heads and output.sentiment is not None:
                    sentiment.append(output.sentiment.float().cpu())
                if with_heads and self._tone is not None and output.tower is not None:
                    features = {"tower": output.tower, "embedding": output.embedding, "shared": output.shared}
                    probabilities = self._tone(features)
                    emotion.append(probabilities[0].cpu())
                    offensive.append(probabilities[1].cpu())
            # Back from length order to text order.
            inverse = torch.from_numpy(np.argsort(np.array(order)))
            vectors = torch.cat(embeddings)[inverse]
            if not with_heads:
                return vectors, None
            logits = torch.cat(sentiment)[inverse] if self._head is None else self._head(vectors)
            heads = _Heads(logits, torch.cat(emotion)[inverse] if emotion else None,
                           torch.cat(offensive)[inverse] if offensive else None)
        return vectors, heads

    def _embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([PASSAGE_PREFIX + text for text in texts], with_heads=False)[0].numpy()

    def embed(self, texts: Sequence[str], is_query: bool) -> list[list[float]]:
        if not texts:
            return []
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
            relevance = self.topics.scores(embeddings.numpy())
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
        self, text: str, probabilities: list[float], relevance: np.ndarray, embedding: list[float], tone: Tone
    ) -> EnrichmentResult:
        tagging = self.topics.tagging(relevance)
        if not text.strip():
            # Nothing was said: no opinion, no tone and no topic, whatever the encoder makes of the bare prefix.
            probabilities = [float(label == "neutral") for label in LABELS]
            tagging = self.topics.untagged()
            tone = NO_TONE
        return EnrichmentResult(
            label=LABELS[max(range(len(LABELS)), key=probabilities.__getitem__)],
            scores=dict(zip(LABELS, probabilities, strict=True)),
            relevance=tagging.relevance,
            topic=tagging.topic,
            topics=tagging.topics,
            embedding=embedding,
            tone=tone,
        )


def _torch_pass(settings: Settings, tower_file: Path | None) -> tuple[EncoderPass, Tokenizer, bool]:
    """The pass in torch: fp16 on CUDA, else fp32 or int8 dynamic quantization (settings.inference_quantize)."""
    encoder, tokenizer = load_encoder(settings.model_cache_dir)
    tower = load_tower(tower_file, encoder) if tower_file is not None else None
    if torch.cuda.is_available():
        # Half precision halves memory and doubles throughput on GPUs; the linear heads stay fp32.
        typing.cast(torch.nn.Module, encoder).to(device="cuda", dtype=torch.float16)  # in place
        if tower is not None:
            tower.to(device="cuda")
            tower.layers.to(dtype=torch.float16)
    quantize = settings.inference_quantize and not torch.cuda.is_available()
    if quantize:
        quantized(encoder.encoder)
        if tower is not None:
            quantized(tower.layers)
    return EncoderPass(encoder, tower), tokenizer, quantize


def _onnx_pass(
    settings: Settings, tower_file: Path | None, runtime: Runtime, threads: int
) -> tuple[OnnxPass, Tokenizer]:
    """The pass in ONNX Runtime, exported from the torch modules when no graph of these artifacts is cached."""
    path = graph_path(settings.model_cache_dir, ENCODER_VERSION, tower_file, runtime)
    tokenizer = Tokenizer.from_file(str(build_into(settings.model_cache_dir) / "tokenizer.json"))
    if not path.exists():
        encoder, _ = load_encoder(settings.model_cache_dir)
        tower = load_tower(tower_file, encoder) if tower_file is not None else None
        module = EncoderPass(encoder, tower)
        try:
            export_graph(module, tokenizer, path, runtime)
        except OSError as error:
            # A read-only cache (an image built before these artifacts): a graph for this process only.
            # The session keeps the model in memory, so the file can go once it is loaded.
            log.warning("cannot write %s (%s): exporting the encoder pass for this process only", path, error)
            with tempfile.TemporaryDirectory(prefix="civic-onnx-") as folder:
                private = export_graph(module, tokenizer, Path(folder) / path.name, runtime)
                return OnnxPass(private, threads), tokenizer
    return OnnxPass(path, threads), tokenizer
