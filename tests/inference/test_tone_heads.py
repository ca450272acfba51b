"""The tone heads' training pieces: the offensive threshold folded into the bias, and the heads'
refusal to run on an encoder pass that lacks a feature they read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.tone import ToneHeads
from inference.training.tone import best_threshold, with_threshold


def test_folded_threshold_moves_the_decision_to_half() -> None:
    torch.manual_seed(0)
    head, features = torch.nn.Linear(8, 2), torch.randn(500, 8)
    with torch.no_grad():
        before = torch.softmax(head(features), dim=1)[:, 1]
        after = torch.softmax(with_threshold(head, 0.34)(features), dim=1)[:, 1]
    assert torch.equal(before >= 0.34, after >= 0.5)
    assert 0.05 < float((before >= 0.34).float().mean()) < 0.95  # the check is not vacuous


def test_best_threshold_finds_the_separating_score() -> None:
    head = torch.nn.Linear(1, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[0.0], [1.0]]))
        head.bias.zero_()
    features = np.linspace(-3, 3, 61, dtype=np.float32)[:, None]
    labels = (features[:, 0] >= -0.8).astype(np.int64)  # scores 0.289 | 0.310: only 0.30 separates them
    threshold, score = best_threshold(head, features, labels)
    assert threshold == pytest.approx(0.30) and score == 1.0


def test_heads_name_the_missing_feature() -> None:
    heads = ToneHeads(("tower", "embedding"), torch.nn.Linear(8, 4), torch.nn.Linear(8, 2))
    with pytest.raises(KeyError, match="missing \\['embedding'\\]"):
        heads({"tower": torch.zeros(1, 4), "shared": torch.zeros(1, 4)})
