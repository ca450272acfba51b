"""Trains the shipped sentiment head (inference/artifacts/) and fits the relevance background
(services/common/relevance/artifacts/).

    python -m inference.training.sentiment [--seed 0] [--data-dir ...] [--cache-dir ...]

The encoder stays frozen: the head is a multinomial logistic regression over the same normalized
"passage: " embedding that Enrich computes, trained on the UMSAB train splits of all 8 languages
with its L2 strength chosen on the validation splits. Test splits are never read. Embeddings are
cached under the model cache dir (keyed by encoder, sequence length and a digest of the texts), so a
rerun takes seconds. Every figure printed is also written to the artifacts JSON, with the inputs'
checksums, so a shipped weight can be traced to how it was made.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from inference.encoder import ENCODER_VERSION
from inference.model import LABELS, PASSAGE_PREFIX
from inference.shipped import ARTIFACTS_DIR
from inference.training.data import DEFAULT_DATA_DIR, LANGUAGES, EmbeddingCache, load_split, read_lines, sha256_file
from inference.training.heads import fit_logistic
from inference.training.metrics import macro_f1, macro_recall
from services.common.relevance.background import BACKGROUND_FILE, BACKGROUND_JSON, Background
from services.common.settings import Settings

L2_GRID = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)


def predict(head: torch.nn.Linear, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = head(torch.from_numpy(features).float())
    predicted: np.ndarray = logits.argmax(dim=1).numpy()
    return predicted


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
