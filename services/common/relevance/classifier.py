"""A topic's own classifier, fitted on what analysts marked: logistic regression on the embeddings.

Marks are few and arrive one at a time, so the model must refit in well under a second and say
honestly how good it is: its precision and recall are measured by cross-validation over the marks
(each mark scored by a model fitted without it), never on the marks it was fitted on. It takes over
from the description once each side has MIN_MARKS_PER_CLASS marks; below that the cross-validated
figures are too noisy to trust and the description's calibrated score is the better bet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

MIN_MARKS_PER_CLASS = 10
MAX_FOLDS = 5
# Inverse regularization strength, chosen on the synthetic training week only (10 and 30 marks per side
# drawn from it, scored on its other posts): mean F1 rose from C 0.25 to about 256 and stayed flat
# beyond (30 marks: 0.565 at 0.25, 0.630 at 4, 0.715 at 256, 0.719 at 1024).
REGULARIZATION_C = 256.0


@dataclass(frozen=True)
class Quality:
    """What a topic is scored by and, for a classifier, its cross-validated figures."""

    scorer: str  # "description", "prototype" or "classifier"
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


def fit_classifier(relevant: np.ndarray, not_relevant: np.ndarray, threshold: float) -> Classifier | None:
    """The classifier of a topic with enough marks of both kinds, else None."""
    if marks_needed(len(relevant), len(not_relevant)):
        return None
    x = np.vstack([relevant, not_relevant]).astype(np.float64)
    y = np.concatenate([np.ones(len(relevant), dtype=int), np.zeros(len(not_relevant), dtype=int)])
    folds = min(MAX_FOLDS, len(relevant), len(not_relevant))
    model = _model()
    held_out = cross_val_predict(model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0),
                                 method="predict_proba")[:, 1]
    predicted = held_out >= threshold
    true_positives = int(np.sum(predicted & (y == 1)))
    precision = true_positives / max(1, int(predicted.sum()))
    recall = true_positives / len(relevant)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    model.fit(x, y)
    quality = Quality("classifier", len(relevant), len(not_relevant), 0, round(precision, 4), round(recall, 4),
                      round(f1, 4), folds)
    return Classifier(model.coef_[0].astype(np.float32), float(model.intercept_[0]), quality)


def _model() -> LogisticRegression:
    # Balanced weights: analysts mark what they come across, so the two sides' counts say nothing
    # about how common the topic is.
    return LogisticRegression(C=REGULARIZATION_C, class_weight="balanced", max_iter=2000)
