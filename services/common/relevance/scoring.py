"""Scores posts against a set of topics: description, prototype and classifier, calibrated alike.

A topic is scored by the best evidence it has. Its description alone gives a zero-shot score; its
example posts add a prototype (their mean direction, pushed away from the counter-examples' as in
Rocchio's method) and the higher of the two scores counts; once analysts marked enough posts, a
logistic regression on the embeddings (classifier.py) replaces both. The first two are cosines
made comparable across topics as z-scores against ordinary posts (background.py), together with
how far the topic is behind the set's best one (a post about fares is usually closest to the fares
topic, whatever the absolute level), mapped to a probability by a logistic calibration fitted once
on labelled posts (calibration.json, fitted by bench/relevance_calibration.py on training data
only). Every score is a probability of relevance, so one threshold (0.5 unless the topic says
otherwise) means the same on every topic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.common import boolean_query
from services.common.relevance.background import ARTIFACTS_DIR, Background
from services.common.relevance.classifier import Classifier
from services.common.relevance.definitions import TopicDefinition

CALIBRATION_FILE = ARTIFACTS_DIR / "calibration.json"
# Counter-examples pull the prototype away from them by this share of their mean (Rocchio's gamma).
COUNTER_WEIGHT = 0.5

# Passage embeddings of texts, L2-normalized, one row per text.
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Features:
    """[posts, topics] z of the description, z of the prototype (the description's where a topic has
    no examples), how far behind the set's best topic by descriptions and by best evidence; and which
    topics have a prototype."""

    z_description: np.ndarray
    z_prototype: np.ndarray
    behind_description: np.ndarray
    behind: np.ndarray
    has_prototype: np.ndarray

    def zero_shot_inputs(self) -> np.ndarray:
        return np.stack([self.z_description, self.behind_description], axis=-1)

    def few_shot_inputs(self) -> np.ndarray:
        return np.stack([self.z_description, self.z_prototype, self.behind], axis=-1)


@dataclass(frozen=True)
class Calibration:
    """Logistic maps from a topic's features to a probability of relevance.

    zero_shot reads (z of the description, z behind the set's best); few_shot reads (z of the
    description, z of the prototype, z behind the set's best).
    """

    zero_shot: tuple[np.ndarray, float]
    few_shot: tuple[np.ndarray, float]

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        record = json.loads(path.read_text(encoding="utf-8"))
        return cls(*(
            (np.array(record[kind]["weights"], dtype=np.float32), float(record[kind]["bias"]))
            for kind in ("zero_shot", "few_shot")
        ))

    def apply(self, features: Features) -> np.ndarray:
        """The description's score, or the examples' where they say more: examples add what the words of
        the description miss, but short, plain posts often sit closer to the words than to long examples."""
        zero_shot = _sigmoid(features.zero_shot_inputs() @ self.zero_shot[0] + self.zero_shot[1])
        few_shot = _sigmoid(features.few_shot_inputs() @ self.few_shot[0] + self.few_shot[1])
        return np.where(features.has_prototype, np.maximum(zero_shot, few_shot), zero_shot).astype(np.float32)

    def save(self, path: Path, extra: dict[str, Any]) -> None:
        record = {kind: {"weights": [round(float(w), 6) for w in weights], "bias": round(bias, 6)}
                  for kind, (weights, bias) in (("zero_shot", self.zero_shot), ("few_shot", self.few_shot))}
        path.write_text(json.dumps({**record, **extra}, indent=2) + "\n", encoding="utf-8")

    def checksum(self) -> str:
        values = [*self.zero_shot[0].tolist(), self.zero_shot[1], *self.few_shot[0].tolist(), self.few_shot[1]]
        return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CompiledTopic:
    """A definition with the vectors it is scored by."""

    definition: TopicDefinition
    description_vector: np.ndarray
    example_vectors: np.ndarray  # [examples, dims]
    counter_vectors: np.ndarray  # [counter examples, dims]
    classifier: Classifier | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    def prototype(self) -> np.ndarray | None:
        if not len(self.example_vectors):
            return None
        direction = self.example_vectors.mean(axis=0)
        if len(self.counter_vectors):
            direction = direction - COUNTER_WEIGHT * self.counter_vectors.mean(axis=0)
        return _unit(direction)

    def with_classifier(self, classifier: Classifier | None) -> CompiledTopic:
        return CompiledTopic(self.definition, self.description_vector, self.example_vectors, self.counter_vectors,
                             classifier)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.definition.as_dict(),
            "description_vector": self.description_vector.tolist(),
            "example_vectors": self.example_vectors.tolist(),
            "counter_vectors": self.counter_vectors.tolist(),
            "classifier": self.classifier.as_dict() if self.classifier is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompiledTopic:
        dims = len(data["description_vector"])
        return cls(
            TopicDefinition.from_dict(data),
            np.array(data["description_vector"], dtype=np.float32),
            np.array(data["example_vectors"], dtype=np.float32).reshape(-1, dims),
            np.array(data["counter_vectors"], dtype=np.float32).reshape(-1, dims),
            Classifier.from_dict(data["classifier"]) if data.get("classifier") else None,
        )


def compile_topic(definition: TopicDefinition, embed: Embed, classifier: Classifier | None = None) -> CompiledTopic:
    """Embeds the description and examples (one call) into a scorable topic."""
    return compile_topics([definition], embed)[0].with_classifier(classifier)


def compile_topics(definitions: Sequence[TopicDefinition], embed: Embed) -> list[CompiledTopic]:
    """Several topics with one embedding call."""
    texts: list[str] = []
    for definition in definitions:
        texts += [definition.description, *definition.examples, *definition.counter_examples]
    vectors = np.asarray(embed(texts), dtype=np.float32) if texts else np.zeros((0, 0), dtype=np.float32)
    compiled, start = [], 0
    for definition in definitions:
        examples_end = start + 1 + len(definition.examples)
        end = examples_end + len(definition.counter_examples)
        compiled.append(CompiledTopic(definition, vectors[start], vectors[start + 1:examples_end],
                                      vectors[examples_end:end]))
        start = end
    return compiled


@dataclass(frozen=True)
class Tagging:
    """One post's relevance to each topic (highest first), its top topic and every topic it is about."""

    relevance: list[tuple[str, float]]
    topic: str
    topics: list[str]


class TopicSetScorer:
    """Scores embeddings against a fixed set of compiled topics."""

    def __init__(self, topics: Sequence[CompiledTopic], background: Background, calibration: Calibration) -> None:
        if not topics:
            raise ValueError("a topic set needs at least one topic")
        self.topics = list(topics)
        self.names = [topic.name for topic in self.topics]
        self._thresholds = np.array([topic.definition.threshold for topic in self.topics], dtype=np.float32)
        self._background = background
        self._calibration = calibration
        descriptions = np.stack([topic.description_vector for topic in self.topics])
        self._description_moments = background.moments(descriptions)
        self._descriptions = descriptions
        prototypes = [topic.prototype() for topic in self.topics]
        self._has_prototype = np.array([p is not None for p in prototypes])
        self._prototypes = np.stack([p if p is not None else topic.description_vector
                                     for p, topic in zip(prototypes, self.topics, strict=True)])
        self._prototype_moments = background.moments(self._prototypes)
        self._queries = [boolean_query.parse(t.definition.query) if t.definition.query else None for t in self.topics]

    def features(self, embeddings: np.ndarray) -> Features:
        """What the calibration reads, for each post and topic."""
        x = np.asarray(embeddings, dtype=np.float32).reshape(-1, self._descriptions.shape[1])
        z_description = _z(x @ self._descriptions.T, self._description_moments)
        z_prototype = _z(x @ self._prototypes.T, self._prototype_moments)
        # The evidence each topic is ranked by: its prototype where it has one.
        z_best = np.where(self._has_prototype, z_prototype, z_description)
        return Features(z_description, z_prototype, z_description - z_description.max(axis=1, keepdims=True),
                        z_best - z_best.max(axis=1, keepdims=True), self._has_prototype)

    def scores(self, embeddings: np.ndarray, documents: Sequence[boolean_query.Document] | None = None) -> np.ndarray:
        """[posts, topics] probability of relevance. A post that does not match a topic's query scores 0
        on that topic; queries are checked only when documents are given."""
        x = np.asarray(embeddings, dtype=np.float32).reshape(-1, self._descriptions.shape[1])
        scores = self._calibration.apply(self.features(x))
        for column, topic in enumerate(self.topics):
            if topic.classifier is not None:
                scores[:, column] = topic.classifier.probabilities(x)
        if documents is not None:
            for column, query in enumerate(self._queries):
                if query is not None:
                    scores[:, column] *= np.array([query.matches(doc) for doc in documents], dtype=np.float32)
        return scores

    def tag(self, embeddings: np.ndarray, documents: Sequence[boolean_query.Document] | None = None) -> list[Tagging]:
        return [self.tagging(row) for row in self.scores(embeddings, documents)]

    def tagging(self, row: np.ndarray) -> Tagging:
        order = np.argsort(-row, kind="stable")
        relevance = [(self.names[i], round(float(row[i]), 4)) for i in order]
        topics = [self.names[i] for i in order if row[i] >= self._thresholds[i]]
        return Tagging(relevance, topics[0] if topics else "", topics)

    def untagged(self) -> Tagging:
        """What a post with nothing said gets: no relevance to anything."""
        return Tagging([(name, 0.0) for name in self.names], "", [])


def _z(cosines: np.ndarray, moments: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean, std = moments
    return (cosines - mean) / std


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))).astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def set_checksum(definitions: Sequence[TopicDefinition], background: Background, calibration: Calibration) -> str:
    """Short digest of everything that decides a description or prototype score except the encoder."""
    digest = hashlib.sha256(json.dumps([d.as_dict() for d in definitions], sort_keys=True,
                                       ensure_ascii=False).encode())
    digest.update(background.checksum().encode())
    digest.update(calibration.checksum().encode())
    return digest.hexdigest()[:12]
