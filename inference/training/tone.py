"""Trains the shipped tone heads (emotion, offensive language); writes inference/artifacts/tone_heads.*.

    python -m inference.training.tone [--seed 0] [--tower FILE] [--data-dir ...] [--cache-dir ...] [--out-dir ...]

The heads read features that the encoder pass of every post already computes (inference/tone.py):
the shipped sentiment tower's pooled output, the post embedding and the mean of the shared lower
layers' output. Each head is a logistic regression (inference/training/heads.fit_logistic) trained
on the TweetEval train split of its task; the feature set, the L2 strength, the class weighting and,
for the offensive head, the decision threshold are chosen on the validation split. The threshold is
folded into the offensive bias, so the served rule stays "offensive at score >= 0.5". Test splits are
never read. The lower layers' outputs are cached under the model cache dir, so a rerun takes minutes.
Every figure printed is written to tone_heads.json with the inputs' checksums and the hyper-parameters.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from inference.encoder import ENCODER_VERSION, load_encoder, packed_model_path
from inference.model import SENTIMENT_TOWER_FILE
from inference.shipped import ARTIFACTS_DIR
from inference.tone import EMOTIONS, OFFENSIVE_LABELS, ToneHeads
from inference.tower import load_tower
from inference.training.data import TONE_DATA_DIR, load_task, sha256_file
from inference.training.heads import fit_logistic
from inference.training.metrics import macro_f1
from inference.training.states import cached_lower_states, pooled_features
from services.common.settings import Settings

TASKS = {"emotion": EMOTIONS, "offensive": OFFENSIVE_LABELS}
FEATURE_SETS = (("tower",), ("embedding",), ("tower", "embedding"), ("tower", "embedding", "shared"))
L2_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
WEIGHTINGS = ("none", "balanced")
# Offensive decision thresholds tried on validation (OLID is one-third offensive, so macro-F1 peaks off 0.5).
THRESHOLDS = tuple(round(0.2 + 0.02 * step, 2) for step in range(31))


@dataclass(frozen=True)
class Setting:
    features: tuple[str, ...]
    l2: float
    weighting: str
    threshold: float  # offensive at probability >= threshold (0.5 for the emotion head, which takes the argmax)
    val_macro_f1: float


def class_weights(labels: np.ndarray, classes: int, weighting: str) -> torch.Tensor | None:
    """None, or weights that give every class the same total weight."""
    if weighting == "none":
        return None
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return torch.from_numpy(len(labels) / (classes * counts))


def predict(head: torch.nn.Linear, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        predicted: np.ndarray = head(torch.from_numpy(features).float()).argmax(dim=1).numpy()
    return predicted


def best_threshold(head: torch.nn.Linear, features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, macro-F1) of the binary head's best decision threshold on these labels; ties keep the
    threshold nearest 0.5."""
    with torch.no_grad():
        scores = torch.softmax(head(torch.from_numpy(features).float()), dim=1)[:, 1].numpy()
    scored = [(macro_f1(labels, (scores >= threshold).astype(np.int64), 2), -abs(threshold - 0.5), threshold)
              for threshold in THRESHOLDS]
    score, _, threshold = max(scored)
    return threshold, score


def with_threshold(head: torch.nn.Linear, threshold: float) -> torch.nn.Linear:
    """The binary head with its decision threshold folded into the bias: softmax score >= 0.5 afterwards
    exactly where it was >= threshold before (the logit margin shifts by log(threshold / (1 - threshold)))."""
    shift = float(np.log(threshold / (1 - threshold)))
    with torch.no_grad():
        head.bias[1] -= shift / 2
        head.bias[0] += shift / 2
    return head


def stacked(features: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([features[name] for name in names], axis=1)


def search_task(
    task: str, train: tuple[dict[str, np.ndarray], np.ndarray], val: tuple[dict[str, np.ndarray], np.ndarray],
    seed: int,
) -> list[Setting]:
    """Every (feature set, L2, weighting) scored on validation, the offensive head at its best threshold."""
    classes = len(TASKS[task])
    results: list[Setting] = []
    for names, l2, weighting in itertools.product(FEATURE_SETS, L2_GRID, WEIGHTINGS):
        head = fit_logistic(torch.from_numpy(stacked(train[0], names)).double(), torch.from_numpy(train[1]), l2,
                            seed, classes=classes, class_weights=class_weights(train[1], classes, weighting))
        if task == "offensive":
            threshold, score = best_threshold(head, stacked(val[0], names), val[1])
        else:
            threshold, score = 0.5, macro_f1(val[1], predict(head, stacked(val[0], names)), classes)
        results.append(Setting(names, l2, weighting, threshold, score))
        print(f"  {task}: {'+'.join(names):<24} l2={l2:<6g} weights={weighting:<8} threshold={threshold:<4g} "
              f"val macro-F1 {100 * score:.1f}", flush=True)
    return results


def choose(searches: dict[str, list[Setting]]) -> tuple[tuple[str, ...], dict[str, Setting]]:
    """One feature set for both heads (the model concatenates it once per batch): the one whose best
    settings give the highest mean of the two validation macro-F1; per head, its best setting there."""
    def best_with(names: tuple[str, ...]) -> dict[str, Setting]:
        return {task: max((r for r in results if r.features == names), key=lambda r: r.val_macro_f1)
                for task, results in searches.items()}

    names = max(FEATURE_SETS, key=lambda s: float(np.mean([r.val_macro_f1 for r in best_with(s).values()])))
    return names, best_with(names)


def main() -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=TONE_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, default=settings.model_cache_dir)
    parser.add_argument("--out-dir", type=Path, default=ARTIFACTS_DIR)
    parser.add_argument("--max-length", type=int, default=settings.max_seq_length)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tower", type=Path, default=SENTIMENT_TOWER_FILE,
                        help="the sentiment tower whose output the heads read (the one shipped beside them)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.monotonic()

    inputs = {str(packed_model_path()): sha256_file(packed_model_path()),
              str(args.tower): sha256_file(args.tower)}
    encoder, tokenizer = load_encoder(args.cache_dir)
    tower = load_tower(args.tower, encoder)
    depth = len(tower.layers)
    upper = encoder.encoder.layer[encoder.config.num_hidden_layers - depth :]
    data: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    for task, split in itertools.product(TASKS, ("train", "val")):
        texts, labels = load_task(args.data_dir, task, split, inputs)
        states = cached_lower_states(args.cache_dir, encoder, tokenizer, texts, depth, args.max_length)
        data[f"{task}/{split}"] = (pooled_features(upper, tower, states), labels)
        print(f"{task}/{split}: {len(texts)} tweets, features ready at {time.monotonic() - started:.0f}s", flush=True)

    searches = {task: search_task(task, data[f"{task}/train"], data[f"{task}/val"], args.seed) for task in TASKS}
    names, chosen = choose(searches)
    heads, figures = {}, {}
    for task, label_names in TASKS.items():
        classes = len(label_names)
        (train_x, train_y), (val_x, val_y) = data[f"{task}/train"], data[f"{task}/val"]
        heads[task] = fit_logistic(
            torch.from_numpy(stacked(train_x, names)).double(), torch.from_numpy(train_y), chosen[task].l2,
            args.seed, classes=classes, class_weights=class_weights(train_y, classes, chosen[task].weighting),
        )
        if task == "offensive":
            heads[task] = with_threshold(heads[task], chosen[task].threshold)
        figures[task] = macro_f1(val_y, predict(heads[task], stacked(val_x, names)), classes)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    heads_path = args.out_dir / "tone_heads.safetensors"
    ToneHeads(names, heads["emotion"], heads["offensive"]).save(heads_path)
    record = {
        "encoder": ENCODER_VERSION,
        "heads": {"file": heads_path.name, "sha256": sha256_file(heads_path), "features": list(names),
                  "emotion_labels": list(EMOTIONS), "offensive_labels": list(OFFENSIVE_LABELS)},
        "input": f"'passage: ' + text, truncated to {args.max_length} tokens (as every post)",
        "hyper_parameters": {"feature_sets": [list(s) for s in FEATURE_SETS], "l2_grid": list(L2_GRID),
                             "weightings": list(WEIGHTINGS), "offensive_thresholds": list(THRESHOLDS),
                             "threshold_folding": "offensive bias shifted by -/+ log(t / (1 - t)) / 2, so that "
                                                  "score >= 0.5 means probability >= t before the shift",
                             "seed": args.seed,
                             "chosen": {task: asdict(setting) for task, setting in chosen.items()},
                             "optimizer": "LBFGS (strong Wolfe), max_iter 500, standardized features folded "
                                          "into the layer"},
        "data": {"train": "TweetEval emotion and offensive train splits", "model_selection": "their val splits",
                 "inputs_sha256": inputs},
        "figures": {"val_macro_f1": figures,
                    "search": {task: [asdict(r) for r in results] for task, results in searches.items()}},
        "train_seconds": round(time.monotonic() - started),
    }
    (args.out_dir / "tone_heads.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nfeatures: {'+'.join(names)}")
    for task, score in figures.items():
        print(f"  {task:<10} val macro-F1 {100 * score:.1f} (l2 {chosen[task].l2:g}, "
              f"class weights {chosen[task].weighting}, threshold {chosen[task].threshold:g})")
    print(f"heads sha256 {record['heads']['sha256']}")  # type: ignore[index]


if __name__ == "__main__":
    main()
