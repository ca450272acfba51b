"""Fits the relevance calibration (services/common/relevance/artifacts/calibration.json) on training data.

The calibration maps a topic's features (z-scores of the description and of the examples'
prototype against ordinary posts, and how far the topic is behind the set's best one) to a
probability of relevance, one map for topics with a description only and one for topics with
examples. It is fitted on the training week (seed 11) of each demo agency, against both the
agency's own topics (examples/topics/) and the shipped defaults, with ordinary UMSAB train tweets
mixed in as posts about nothing; few-shot rows use 8 examples per topic drawn from the training week
(and left out of the rows). Its bias is then moved so that 0.5 is the threshold of best F1 on the
same training rows. Nothing of the validation week or of UMSAB val is read.

    python bench/relevance_calibration.py [--write]
"""

from __future__ import annotations

import argparse
import random

import numpy as np
from sklearn.linear_model import LogisticRegression

from bench.relevance_data import REPO, TENANTS, TRAIN_SEED, Embeddings, joined, off_topic, synthetic
from services.common.relevance.background import Background
from services.common.relevance.definitions import TopicDefinition, load_topics
from services.common.relevance.scoring import CALIBRATION_FILE, Calibration, TopicSetScorer, compile_topics

SHOTS = 8
OFF_TOPIC_PER_LANGUAGE = 600
NEUTRAL = Calibration((np.zeros(2, dtype=np.float32), 0.0), (np.zeros(3, dtype=np.float32), 0.0))


def with_examples(definitions: list[TopicDefinition], texts: list[str], gold: list[set[str]],
                  rng: random.Random) -> tuple[list[TopicDefinition], set[int]]:
    """The definitions with SHOTS examples each drawn from the posts about them; the posts drawn."""
    drawn: set[int] = set()
    out = []
    for definition in definitions:
        about = [i for i, topics in enumerate(gold) if definition.name in topics and i not in drawn]
        if len(about) < SHOTS:
            out.append(TopicDefinition(definition.name, definition.description))
            continue
        chosen = rng.sample(about, SHOTS)
        drawn.update(chosen)
        out.append(TopicDefinition(definition.name, definition.description, tuple(texts[i] for i in chosen)))
    return out, drawn


def rows(embed: Embeddings, background: Background, rng: random.Random) -> tuple[list[np.ndarray], ...]:
    zero_x, zero_y, few_x, few_y = [], [], [], []
    for tenant in TENANTS:
        data = joined(synthetic(TRAIN_SEED, tenant), off_topic("train", OFF_TOPIC_PER_LANGUAGE))
        vectors = embed(data.texts)
        agency = [TopicDefinition(d.name, d.description) for d in load_topics(REPO / "examples" / "topics" /
                                                                              f"{tenant}.yaml")]
        for definitions, gold in ((agency, data.topics), (load_topics(), data.services)):
            zero = TopicSetScorer(compile_topics(definitions, embed), background, NEUTRAL).features(vectors)
            labels = np.array([[d.name in g for d in definitions] for g in gold])
            zero_x.append(zero.zero_shot_inputs().reshape(-1, 2))
            zero_y.append(labels.reshape(-1))
            shots, drawn = with_examples(definitions, data.texts, gold, rng)
            few = TopicSetScorer(compile_topics(shots, embed), background, NEUTRAL).features(vectors)
            keep = np.array([i not in drawn for i in range(len(gold))])
            has = few.has_prototype
            few_x.append(few.few_shot_inputs()[keep][:, has].reshape(-1, 3))
            few_y.append(labels[keep][:, has].reshape(-1))
    return zero_x, zero_y, few_x, few_y


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, dict[str, float]]:
    """Logistic fit, then the bias that puts the best-F1 threshold of these rows at 0.5."""
    model = LogisticRegression(C=100.0, max_iter=2000).fit(x, y)
    weights, bias = model.coef_[0], float(model.intercept_[0])
    logits = x @ weights + bias
    best = (0.0, 0.0)
    for shift in np.linspace(-3, 3, 121):
        predicted = logits + shift >= 0
        tp = float(np.sum(predicted & y))
        f1 = 2 * tp / max(1.0, float(predicted.sum() + y.sum()))
        best = max(best, (f1, float(shift)))
    return weights.astype(np.float32), bias + best[1], {"train_f1": round(best[0], 4), "rows": len(y),
                                                        "positives": int(y.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {CALIBRATION_FILE.name}")
    args = parser.parse_args()
    embed = Embeddings()
    zero_x, zero_y, few_x, few_y = rows(embed, Background.load(), random.Random(TRAIN_SEED))
    zero = fit(np.vstack(zero_x), np.concatenate(zero_y))
    few = fit(np.vstack(few_x), np.concatenate(few_y))
    print(f"zero-shot: weights {np.round(zero[0], 3).tolist()} bias {zero[1]:.3f}  {zero[2]}")
    print(f"few-shot:  weights {np.round(few[0], 3).tolist()} bias {few[1]:.3f}  {few[2]}")
    if args.write:
        Calibration((zero[0], zero[1]), (few[0], few[1])).save(CALIBRATION_FILE, {
            "method": "logistic regression of relevance on (z description, z behind the best topic) and "
                      "(z description, z prototype, z behind); bias moved to the best-F1 threshold on train",
            "encoder": embed.encoder, "fitted_on": f"synthetic week seed {TRAIN_SEED} of {', '.join(TENANTS)} "
            f"with {OFF_TOPIC_PER_LANGUAGE} UMSAB train tweets per language; {SHOTS} examples per topic",
            "figures": {"zero_shot": zero[2], "few_shot": few[2]},
        })
        print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
