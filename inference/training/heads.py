"""Linear heads over frozen features: multinomial logistic regression fitted with L-BFGS."""

from __future__ import annotations

import torch

from inference.model import LABELS


def fit_logistic(
    features: torch.Tensor, labels: torch.Tensor, l2: float, seed: int,
    classes: int = len(LABELS), class_weights: torch.Tensor | None = None,
) -> torch.nn.Linear:
    """Multinomial logistic regression on standardized features, folded back into one linear layer.

    class_weights (one per class, float64) reweight the cross-entropy, e.g. to balance rare classes.
    """
    torch.manual_seed(seed)
    mean, std = features.mean(dim=0), features.std(dim=0).clamp(min=1e-6)
    standardized = (features - mean) / std
    head = torch.nn.Linear(features.shape[1], classes, dtype=torch.float64)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=500, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def loss_closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(standardized), labels, weight=class_weights)
        loss = loss + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(loss_closure)  # type: ignore[no-untyped-call]
    folded = torch.nn.Linear(features.shape[1], classes)
    with torch.no_grad():
        weight = head.weight / std
        folded.weight.copy_(weight)
        folded.bias.copy_(head.bias - weight @ mean)
    return folded.float().eval()
