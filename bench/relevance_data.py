"""What the relevance figures are measured on: labelled synthetic weeks, ordinary tweets, embeddings.

The example generator knows which topics each synthetic post is about (examples/posts.topics.jsonl).
Weeks of different seeds are the splits: seed 11 is training (the calibration is fitted on it and
the few-shot examples are drawn from it), seed 23 is validation, seed 7 is the demo's own week.
Ordinary tweets from the UMSAB splits (train for training, val for validation) are mixed in as
posts about none of the agencies' topics, so that precision also counts what an agency's stream
carries besides its services. Embeddings come from the shipped encoder, run in this process, and are
cached by text digest.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.common.settings import CACHE_DIR

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
BENCH_CACHE = CACHE_DIR / "bench" / "relevance"
TRAIN_SEED, VALIDATION_SEED, DEMO_SEED = 11, 23, 7
OFF_TOPIC_LANGUAGES = ("english", "spanish", "french")
TENANTS = ("city-transit", "passport-office", "emergency-mgmt")


@dataclass(frozen=True)
class Labelled:
    """Posts of one tenant (or ordinary tweets) with the topics each is about."""

    texts: list[str]
    topics: list[set[str]]
    services: list[set[str]]


def synthetic(seed: int, tenant: str) -> Labelled:
    """One tenant's posts of the week generated with this seed."""
    folder = BENCH_CACHE / f"week-{seed}"
    if not (folder / "posts.topics.jsonl").exists():
        subprocess.run([sys.executable, str(REPO / "examples" / "generate.py"), "--seed", str(seed),
                        "--out", str(folder)], check=True)
    posts = [json.loads(line) for line in (folder / "posts.jsonl").read_text(encoding="utf-8").splitlines()]
    truth = [json.loads(line) for line in (folder / "posts.topics.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [(post, label) for post, label in zip(posts, truth, strict=True) if post["tenant"] == tenant]
    return Labelled([post["text"] for post, _ in rows], [set(label["topics"]) for _, label in rows],
                    [{label["service"]} for _, label in rows])


def off_topic(split: str, per_language: int) -> Labelled:
    """Ordinary tweets (UMSAB), about none of the agencies' topics."""
    texts: list[str] = []
    for language in OFF_TOPIC_LANGUAGES:
        path = DATASETS / "sentiment" / "umsab" / language / f"{split}_text.txt"
        texts += path.read_text(encoding="utf-8").split("\n")[:per_language]
    return Labelled(texts, [set() for _ in texts], [set() for _ in texts])


def joined(*parts: Labelled) -> Labelled:
    return Labelled([t for p in parts for t in p.texts], [s for p in parts for s in p.topics],
                    [s for p in parts for s in p.services])


class Embeddings:
    """Passage embeddings of the shipped encoder, cached on disk by the texts' digest."""

    def __init__(self) -> None:
        from inference.model import EnrichmentModel
        from services.common.settings import Settings

        self._model = EnrichmentModel.from_settings(Settings())
        self.encoder = self._model.versions["encoder"]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        digest = hashlib.sha256(json.dumps([self.encoder, *texts], ensure_ascii=False).encode()).hexdigest()[:20]
        path = BENCH_CACHE / f"embeddings-{digest}.npy"
        if path.exists():
            return np.load(path)
        vectors = np.asarray(self._model.embed(list(texts), is_query=False), dtype=np.float32)
        BENCH_CACHE.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors


@dataclass(frozen=True)
class Figures:
    precision: float
    recall: float
    f1: float
    macro_f1: float
    coverage: float  # share of the agency's posts tagged with at least one topic
    off_topic_tagged: float | None  # share of ordinary tweets tagged with any topic (None: none mixed in)

    def row(self) -> str:
        ordinary = "" if self.off_topic_tagged is None else f"  ordinary tweets tagged {self.off_topic_tagged:.1%}"
        return (f"P {self.precision:.3f}  R {self.recall:.3f}  F1 {self.f1:.3f}  macro-F1 {self.macro_f1:.3f}  "
                f"tagged {self.coverage:.1%}{ordinary}")


def figures(predicted: Sequence[set[str]], gold: Sequence[set[str]], names: Sequence[str]) -> Figures:
    """Micro precision/recall/F1 over (post, topic) pairs, macro-F1 over the topics the posts are about;
    coverage over the posts that are about something, and the share of posts about nothing tagged."""
    tp = sum(len(p & g) for p, g in zip(predicted, gold, strict=True))
    fp = sum(len(p - g) for p, g in zip(predicted, gold, strict=True))
    fn = sum(len(g - p) for p, g in zip(predicted, gold, strict=True))
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    per_topic = []
    for name in names:
        t = sum(1 for p, g in zip(predicted, gold, strict=True) if name in p and name in g)
        f = sum(1 for p, g in zip(predicted, gold, strict=True) if name in p and name not in g)
        n = sum(1 for p, g in zip(predicted, gold, strict=True) if name not in p and name in g)
        if t + n:  # macro over the topics the posts are about
            per_topic.append(2 * t / (2 * t + f + n))
    about = [bool(p) for p, g in zip(predicted, gold, strict=True) if g]
    nothing = [bool(p) for p, g in zip(predicted, gold, strict=True) if not g]
    return Figures(precision, recall, 2 * precision * recall / max(1e-9, precision + recall),
                   float(np.mean(per_topic)) if per_topic else 0.0, float(np.mean(about)) if about else 0.0,
                   float(np.mean(nothing)) if nothing else None)
