"""A topic's own classifier: logistic regression on the embeddings of what it was taught.

Marks are few and arrive one at a time, so the model must refit in well under a second and say
honestly how good it is: its precision and recall are measured by cross-validation over the taught
posts (each scored by a model fitted without it), never on the posts it was fitted on, once each side
has MIN_MARKS_PER_CLASS of them; below that such figures are too noisy to show. What it is taught
with is teaching.py's choice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

MIN_MARKS_PER_CLASS = 10
MAX_FOLDS = 5
# Inverse regularization strength of a classifier taught by marks, chosen on the synthetic training week
# only (10 and 30 marks per side drawn from it, fitted with the description and 200 ordinary posts and
# balanced classes, scored on its other posts and UMSAB train tweets): mean F1 at 30 marks 0.562 at
# C 16, 0.670 at 64, 0.728 at 256 (and 0.565-0.719 from C 0.25 to 1024 without the ordinary posts).
REGULARIZATION_C = 256.0


@dataclass(frozen=True)
class Quality:
    """What a topic is scored by and, for a classifier, its cross-validated figures."""

    scorer: str  # "description", "examples" or "classifier"
    relevant_marks: int
    not_relevant_marks: int
    marks_needed: int
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    folds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quality:
        return cls(**data)


@dataclass(frozen=True)
class Classifier:
    weights: np.ndarray
    bias: float
    quality: Quality

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        logits = embeddings @ self.weights + self.bias
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))).astype(np.float32)

    def as_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "bias": self.bias, "quality": self.quality.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classifier:
        return cls(np.array(data["weights"], dtype=np.float32), float(data["bias"]),
                   Quality.from_dict(data["quality"]))


def marks_needed(relevant: int, not_relevant: int) -> int:
    """How many more marks of the scarcer kind the classifier waits for."""
    return max(0, MIN_MARKS_PER_CLASS - relevant) + max(0, MIN_MARKS_PER_CLASS - not_relevant)


def fit_classifier(
    relevant: np.ndarray, not_relevant: np.ndarray, threshold: float, *,
    extra_relevant: np.ndarray | None = None, extra_not_relevant: np.ndarray | None = None,
    regularization: float = REGULARIZATION_C,
) -> Classifier | None:
    """A logistic regression of relevant against not relevant posts (None without a relevant one).

    The extra rows (a description, other topics' examples, ordinary posts) are always fitted on but
    never measured. With MIN_MARKS_PER_CLASS taught rows on each side, every taught row is scored by a
    model fitted without its fold, and the figures say how the classifier does on what it was not
    taught; below that the quality is "examples" and carries no figures.
    """
    if not len(relevant):
        return None
    dims = relevant.shape[1]
    extra_pos = extra_relevant if extra_relevant is not None else np.zeros((0, dims), np.float32)
    extra_neg = extra_not_relevant if extra_not_relevant is not None else np.zeros((0, dims), np.float32)
    x = np.vstack([relevant, not_relevant]).astype(np.float64)
    y = np.concatenate([np.ones(len(relevant), dtype=int), np.zeros(len(not_relevant), dtype=int)])
    extra_x = np.vstack([extra_pos, extra_neg]).astype(np.float64)
    extra_y = np.concatenate([np.ones(len(extra_pos), dtype=int), np.zeros(len(extra_neg), dtype=int)])
    needed = marks_needed(len(relevant), len(not_relevant))
    quality = Quality("examples", len(relevant), len(not_relevant), needed)
    if not needed:
        quality = _cross_validated(x, y, extra_x, extra_y, threshold, regularization)
    model = _model(regularization).fit(np.vstack([x, extra_x]), np.concatenate([y, extra_y]),
                                       sample_weight=_weights(y, extra_y))
    return Classifier(model.coef_[0].astype(np.float32), float(model.intercept_[0]), quality)


def _weights(y: np.ndarray, extra_y: np.ndarray) -> np.ndarray:
    """Each side weighs the same in total (analysts mark what they come across, so the counts say
    nothing about how common a topic is), and on the negative side the taught posts weigh as much as
    all the extra rows together: two hundred easy ordinary posts must not drown the ten hard
    counter-examples that tell this topic from the one next to it."""
    positive = np.concatenate([y == 1, extra_y == 1])
    taught_negative = np.concatenate([y == 0, np.zeros(len(extra_y), dtype=bool)])
    extra_negative = np.concatenate([np.zeros(len(y), dtype=bool), extra_y == 0])
    weights = np.zeros(len(positive))
    weights[positive] = 1.0 / max(1, int(positive.sum()))
    share = 0.5 if taught_negative.any() and extra_negative.any() else 1.0
    weights[taught_negative] = share / max(1, int(taught_negative.sum()))
    weights[extra_negative] = share / max(1, int(extra_negative.sum()))
    return weights * len(weights) / 2


def _cross_validated(x: np.ndarray, y: np.ndarray, extra_x: np.ndarray, extra_y: np.ndarray, threshold: float,
                     regularization: float) -> Quality:
    relevant, not_relevant = int(y.sum()), int(len(y) - y.sum())
    folds = min(MAX_FOLDS, relevant, not_relevant)
    held_out = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        model = _model(regularization).fit(np.vstack([x[train], extra_x]), np.concatenate([y[train], extra_y]),
                                           sample_weight=_weights(y[train], extra_y))
        held_out[test] = model.predict_proba(x[test])[:, 1]
    predicted = held_out >= threshold
    true_positives = int(np.sum(predicted & (y == 1)))
    precision = true_positives / max(1, int(predicted.sum()))
    recall = true_positives / relevant
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality("classifier", relevant, not_relevant, 0, round(precision, 4), round(recall, 4), round(f1, 4), folds)


def _model(regularization: float) -> LogisticRegression:
    return LogisticRegression(C=regularization, max_iter=3000)
