"""Sentiment accuracy of the SHIPPED model, through the code behind `civic classify --local`.

    .venv/bin/python bench/sentiment_accuracy.py                # settings from the environment
    .venv/bin/python bench/sentiment_accuracy.py --compare-int8 # torch fp32 and the int8 paths side by side
    .venv/bin/python bench/sentiment_accuracy.py --variants torch-fp32 onnx-fp32 onnx-int8

Runs inference.model.EnrichmentModel (what `civic classify --local` and the Ray Serve replicas run)
on the UMSAB validation splits of the 8 languages and on the TweetEval validation tweets that do not
appear in UMSAB English train, and prints macro-F1 per language, its mean, and TweetEval's
macro-averaged recall; with several variants (runtime and precision, as in
bench/inference_throughput.py), each one's difference to the first. Test splits are never read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from inference.model import LABELS, EnrichmentModel
from inference.runtime import VARIANTS
from inference.training.data import DEFAULT_DATA_DIR, LANGUAGES, load_split, read_lines
from inference.training.metrics import macro_f1, macro_recall
from services.common.settings import Settings


def evaluate(model: EnrichmentModel, data_dir: Path) -> dict[str, float]:
    figures = {}
    for language in LANGUAGES:
        texts, labels = load_split(data_dir, language, "val")
        predicted = np.array([LABELS.index(result.label) for result in model.enrich(texts)])
        figures[language] = macro_f1(labels, predicted)
    figures["mean"] = float(np.mean([figures[language] for language in LANGUAGES]))
    seen = set(read_lines(data_dir / "umsab" / "english" / "train_text.txt"))
    tweets = read_lines(data_dir / "tweeteval" / "val_text.txt")
    tweet_labels = read_lines(data_dir / "tweeteval" / "val_labels.txt")
    unseen = [(text, int(label)) for text, label in zip(tweets, tweet_labels, strict=True) if text not in seen]
    predicted = np.array([LABELS.index(result.label) for result in model.enrich([text for text, _ in unseen])])
    figures["tweeteval"] = macro_recall(np.array([label for _, label in unseen]), predicted)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--compare-int8", action="store_true",
                        help="torch fp32, torch int8 and ONNX Runtime int8 in one run")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="these variants in one run")
    args = parser.parse_args()
    names = ["torch-fp32", "torch-int8", "onnx-int8"] if args.compare_int8 else args.variants
    variants = {name: Settings(inference_runtime=VARIANTS[name][0], inference_quantize=VARIANTS[name][1])
                for name in names} if names else {"as configured": Settings()}
    rows = {}
    for name, settings in variants.items():
        started = time.monotonic()
        model = EnrichmentModel.from_settings(settings)
        rows[name] = evaluate(model, args.data_dir)
        print(f"{name}: sentiment {model.versions['sentiment']}, encoder {model.versions['encoder']} "
              f"({time.monotonic() - started:.0f}s)", flush=True)
    header = ["model"] + [language[:2] for language in LANGUAGES] + ["mean", "TweetEval recall (570)"]
    print("\nUMSAB validation macro-F1 x100 per language; TweetEval validation macro-recall on unseen tweets")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, figures in rows.items():
        cells = [f"{100 * figures[key]:.1f}" for key in (*LANGUAGES, "mean", "tweeteval")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    first, *others = rows
    for name in others:
        print(f"{name} - {first}: mean macro-F1 {100 * (rows[name]['mean'] - rows[first]['mean']):+.2f}, "
              f"TweetEval recall {100 * (rows[name]['tweeteval'] - rows[first]['tweeteval']):+.2f}")


if __name__ == "__main__":
    main()
