"""Trains the shipped sentiment head (inference/artifacts/) and fits the relevance background
(services/common/relevance/artifacts/).

    python -m inference.train_sentiment [--seed 0] [--data-dir ...] [--cache-dir ...]

The encoder stays frozen: the head is a multinomial logistic regression over the same normalized
"passage: " embedding that Enrich computes, trained on the UMSAB train splits of all 8 languages
with its L2 strength chosen on the validation splits. Test splits are never read. Embeddings are
cached under the model cache dir (keyed by encoder, sequence length and a digest of the texts), so a
rerun takes seconds. Every figure printed is also written to the artifacts JSON, with the inputs'
checksums, so a shipped weight can be traced to how it was made.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import BertModel

from inference.encoder import ENCODER_VERSION, load_encoder, mean_pooled
from inference.model import LABELS, PASSAGE_PREFIX
from inference.shipped import ARTIFACTS_DIR
from services.common.relevance.background import BACKGROUND_FILE, BACKGROUND_JSON, Background
from services.common.settings import Settings

LANGUAGES = ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sentiment"
L2_GRID = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)


def read_lines(path: Path) -> list[str]:
    # UMSAB files have no trailing newline: splitlines counts them right.
    return path.read_text(encoding="utf-8").splitlines()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EmbeddingCache:
    """Frozen-encoder embeddings of a list of texts, kept on disk as .npy by digest of the texts."""

    def __init__(self, cache_dir: Path, max_length: int, batch_size: int) -> None:
        self.directory = cache_dir / "embeddings" / f"{ENCODER_VERSION.replace('@', '-')}-len{max_length}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._max_length, self._batch_size = max_length, batch_size
        self._encoder: tuple[BertModel, Tokenizer] | None = None
        self._cache_dir = cache_dir

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        digest = hashlib.sha256(("\n".join(prefix + text for text in texts)).encode()).hexdigest()[:16]
        path = self.directory / f"{digest}.npy"
        if path.exists():
            cached: np.ndarray = np.load(path)
            return cached
        if self._encoder is None:
            self._encoder = load_encoder(self._cache_dir)
        model, tokenizer = self._encoder
        started = time.monotonic()
        vectors = mean_pooled(
            model, tokenizer, [prefix + text for text in texts],
            max_length=self._max_length, batch_size=self._batch_size,
        ).numpy()
        print(f"  embedded {len(texts)} texts in {time.monotonic() - started:.0f}s", flush=True)
        staging = path.with_suffix(".tmp.npy")
        np.save(staging, vectors)
        staging.rename(path)
        return vectors


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


def predict(head: torch.nn.Linear, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = head(torch.from_numpy(features).float())
    predicted: np.ndarray = logits.argmax(dim=1).numpy()
    return predicted


def load_split(data_dir: Path, language: str, split: str) -> tuple[list[str], np.ndarray]:
    folder = data_dir / "umsab" / language
    texts = read_lines(folder / f"{split}_text.txt")
    labels = np.array([int(label) for label in read_lines(folder / f"{split}_labels.txt")])
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} texts but {len(labels)} labels in {split}")
    return texts, labels


def main() -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, default=settings.model_cache_dir)
    parser.add_argument("--out-dir", type=Path, default=ARTIFACTS_DIR)
    parser.add_argument("--max-length", type=int, default=settings.max_seq_length)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--components", type=int, default=64, help="principal components of the background")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    cache = EmbeddingCache(args.cache_dir, args.max_length, args.batch_size)

    train_x, train_y, val = [], [], {}
    inputs: dict[str, str] = {}
    for language in LANGUAGES:
        print(f"{language}:", flush=True)
        for split in ("train", "val"):
            texts, split_labels = load_split(args.data_dir, language, split)
            for kind in ("text", "labels"):
                path = args.data_dir / "umsab" / language / f"{split}_{kind}.txt"
                inputs[str(path)] = sha256_file(path)
            vectors = cache.embed(texts, PASSAGE_PREFIX)
            if split == "train":
                train_x.append(vectors)
                train_y.append(split_labels)
            else:
                val[language] = (vectors, split_labels)
    features = torch.from_numpy(np.concatenate(train_x)).double()
    labels = torch.from_numpy(np.concatenate(train_y))

    search = {}
    for l2 in L2_GRID:
        head = fit_logistic(features, labels, l2, args.seed)
        scores = {lang: macro_f1(y, predict(head, x)) for lang, (x, y) in val.items()}
        search[l2] = float(np.mean(list(scores.values())))
        print(f"l2={l2:g}: mean val macro-F1 {100 * search[l2]:.1f}", flush=True)
    best_l2 = max(search, key=search.__getitem__)
    head = fit_logistic(features, labels, best_l2, args.seed)
    per_language = {lang: macro_f1(y, predict(head, x)) for lang, (x, y) in val.items()}

    tweeteval_dir = args.data_dir / "tweeteval"
    seen = set(read_lines(args.data_dir / "umsab" / "english" / "train_text.txt"))
    tweets, tweet_labels = read_lines(tweeteval_dir / "val_text.txt"), read_lines(tweeteval_dir / "val_labels.txt")
    unseen = [(text, int(label)) for text, label in zip(tweets, tweet_labels, strict=True) if text not in seen]
    for name in ("val_text.txt", "val_labels.txt"):
        inputs[str(tweeteval_dir / name)] = sha256_file(tweeteval_dir / name)
    unseen_x = cache.embed([text for text, _ in unseen], PASSAGE_PREFIX)
    tweeteval_recall = macro_recall(np.array([label for _, label in unseen]), predict(head, unseen_x))

    args.out_dir.mkdir(parents=True, exist_ok=True)
    head_path = args.out_dir / "sentiment_head.safetensors"
    # No metadata: safetensors writes it in hash-map order, which would change the file's sha256 per run.
    save_file({"weight": head.weight.detach().contiguous(), "bias": head.bias.detach().contiguous()},
              str(head_path))

    background = Background.fit(features.double().numpy(), args.components)
    background.save(BACKGROUND_FILE, BACKGROUND_JSON, {
        "method": "mean and the leading principal components of the UMSAB train tweets' embeddings (all 8 "
                  "languages); a topic vector's background cosine distribution follows from them",
        "encoder": ENCODER_VERSION, "components": args.components,
    })

    record = {
        "encoder": ENCODER_VERSION,
        "head": {"file": head_path.name, "sha256": sha256_file(head_path), "labels": list(LABELS)},
        "features": f"L2-normalized mean-pooled '{PASSAGE_PREFIX}' embedding, max_length {args.max_length}",
        "hyper_parameters": {"l2_grid": list(L2_GRID), "l2": best_l2, "optimizer": "LBFGS (strong Wolfe), "
                             "max_iter 500, standardized features folded into the layer", "seed": args.seed,
                             "batch_size_for_embedding": args.batch_size},
        "data": {"train": f"UMSAB train, {len(LANGUAGES)} languages, {len(labels)} tweets",
                 "model_selection": "UMSAB val", "inputs_sha256": inputs,
                 "tweeteval_unseen_val_tweets": len(unseen)},
        "figures": {
            "l2_search_mean_val_macro_f1": {str(k): v for k, v in search.items()},
            "umsab_val_macro_f1": per_language,
            "umsab_val_macro_f1_mean": float(np.mean(list(per_language.values()))),
            "tweeteval_val_unseen_macro_recall": tweeteval_recall,
        },
    }
    (args.out_dir / "sentiment.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    print(f"\nchosen l2 = {best_l2:g}")
    for language, score in per_language.items():
        print(f"  {language:<11} val macro-F1 {100 * score:.1f}")
    print(f"  {'mean':<11} val macro-F1 {100 * record['figures']['umsab_val_macro_f1_mean']:.1f}")  # type: ignore[index]
    print(f"TweetEval val ({len(unseen)} tweets unseen in training): macro-recall {100 * tweeteval_recall:.1f}")
    print(f"head sha256 {record['head']['sha256']}")  # type: ignore[index]


if __name__ == "__main__":
    main()
