"""Fits the relevance calibration (services/common/relevance/artifacts/calibration.json) on training data.

The calibration maps a description-only topic's features (the z-score of the description against
ordinary posts, and how far the topic is behind the set's best description) to a probability of
relevance. It is fitted on the training week (seed 11) of each demo agency, against both the agency's
own topics (examples/topics/, descriptions only) and the shipped defaults, with ordinary UMSAB train
tweets mixed in as posts about nothing. Its bias is then moved so that 0.5 is the threshold of best
F1 on the same training rows. Nothing of the validation week or of UMSAB val is read. Topics with
examples or marks are scored by their own classifier (teaching.py), not by this map.

    python -m bench.relevance_calibration [--write]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.linear_model import LogisticRegression

from bench.relevance_data import REPO, TENANTS, TRAIN_SEED, Embeddings, joined, off_topic, synthetic
from services.common.relevance.background import Background
from services.common.relevance.definitions import TopicDefinition, load_topics
from services.common.relevance.scoring import CALIBRATION_FILE, Calibration, TopicSetScorer, compile_topics

OFF_TOPIC_PER_LANGUAGE = 600
NEUTRAL = Calibration(np.zeros(2, dtype=np.float32), 0.0)


def rows(embed: Embeddings, background: Background) -> tuple[np.ndarray, np.ndarray]:
    inputs, labels = [], []
    for tenant in TENANTS:
        data = joined(synthetic(TRAIN_SEED, tenant), off_topic("train", OFF_TOPIC_PER_LANGUAGE))
        vectors = embed(data.texts)
        agency = [TopicDefinition(d.name, d.description)
                  for d in load_topics(REPO / "examples" / "topics" / f"{tenant}.yaml")]
        for definitions, gold in ((agency, data.topics), (load_topics(), data.services)):
            features = TopicSetScorer(compile_topics(definitions, embed), background, NEUTRAL).features(vectors)
            inputs.append(features.inputs().reshape(-1, 2))
            labels.append(np.array([[d.name in g for d in definitions] for g in gold]).reshape(-1))
    return np.vstack(inputs), np.concatenate(labels)


def fit(x: np.ndarray, y: np.ndarray) -> tuple[Calibration, dict[str, float]]:
    """Logistic fit, then the bias that puts the best-F1 threshold of these rows at 0.5."""
    model = LogisticRegression(C=100.0, max_iter=2000).fit(x, y)
    weights, bias = model.coef_[0].astype(np.float32), float(model.intercept_[0])
    logits = x @ weights + bias
    best = (0.0, 0.0)
    for shift in np.linspace(-3, 3, 121):
        predicted = logits + shift >= 0
        tp = float(np.sum(predicted & y))
        best = max(best, (2 * tp / max(1.0, float(predicted.sum() + y.sum())), float(shift)))
    return Calibration(weights, bias + best[1]), {"train_f1": round(best[0], 4), "rows": len(y),
                                                  "positives": int(y.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {CALIBRATION_FILE.name}")
    args = parser.parse_args()
    embed = Embeddings()
    calibration, figures = fit(*rows(embed, Background.load()))
    print(f"weights {[round(float(w), 3) for w in calibration.weights]} bias {calibration.bias:.3f}  {figures}")
    if args.write:
        calibration.save(CALIBRATION_FILE, {
            "method": "logistic regression of relevance on (z of the description, z behind the set's best "
                      "description); bias moved to the best-F1 threshold on train",
            "encoder": embed.encoder, "fitted_on": f"synthetic week seed {TRAIN_SEED} of {', '.join(TENANTS)} "
            f"with {OFF_TOPIC_PER_LANGUAGE} UMSAB train tweets per language", "figures": figures,
        })
        print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
