"""The metrics the benchmarks' reference scores are given in: macro-F1 (UMSAB, tone) and macro-averaged
recall (TweetEval sentiment)."""

from __future__ import annotations

import numpy as np

from inference.model import LABELS


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int = len(LABELS)) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix

def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int = len(LABELS)) -> float:
    matrix = confusion(truth, predicted, classes)
    hits = np.diag(matrix).astype(float)
    precision = np.divide(hits, matrix.sum(axis=0), out=np.zeros(classes), where=matrix.sum(axis=0) > 0)
    recall = np.divide(hits, matrix.sum(axis=1), out=np.zeros(classes), where=matrix.sum(axis=1) > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(classes), where=total > 0)
    return float(f1.mean())

def macro_recall(truth: np.ndarray, predicted: np.ndarray) -> float:
    matrix = confusion(truth, predicted)
    return float((np.diag(matrix) / matrix.sum(axis=1).clip(min=1)).mean())
