"""Tone accuracy of the SHIPPED model, through the code behind `civic classify --local`.

    .venv/bin/python bench/tone_accuracy.py     # settings from the environment

Runs inference.model.EnrichmentModel (what `civic classify --local` and the Ray Serve replicas run):

1. on the TweetEval emotion and offensive validation splits (English), and prints their macro-F1;
2. on the UMSAB validation splits of the 8 languages, which have sentiment labels but no tone labels,
   and prints how the emotion head agrees with them (anger or sadness on negative tweets, joy or
   optimism on positive ones) and the share of tweets called offensive per sentiment label, so that
   one can judge what the heads are worth outside English, the only language they were trained on.

Test splits are never read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from inference.model import LABELS, EnrichmentModel, EnrichmentResult
from inference.tone import EMOTIONS
from inference.training.data import DEFAULT_DATA_DIR, LANGUAGES, TONE_DATA_DIR, load_split, read_lines
from inference.training.metrics import macro_f1
from services.common.settings import Settings

NEGATIVE_EMOTIONS, POSITIVE_EMOTIONS = {"anger", "sadness"}, {"joy", "optimism"}


def tone_val(model: EnrichmentModel, data_dir: Path) -> dict[str, float]:
    """Emotion and offensive macro-F1 on the TweetEval validation splits."""
    figures: dict[str, float] = {}
    for task in ("emotion", "offensive"):
        texts = read_lines(data_dir / task / "val_text.txt")
        labels = np.array([int(label) for label in read_lines(data_dir / task / "val_labels.txt")])
        results = model.enrich(texts)
        if task == "emotion":
            predicted = np.array([EMOTIONS.index(result.tone.emotion) for result in results])
            figures[task] = macro_f1(labels, predicted, len(EMOTIONS))
        else:
            predicted = np.array([int(result.tone.offensive) for result in results])
            figures[task] = macro_f1(labels, predicted, 2)
    return figures


def agreement(results: list[EnrichmentResult], labels: np.ndarray) -> dict[str, float]:
    """How the tone of one language's tweets lines up with their sentiment labels."""
    emotions = np.array([result.tone.emotion for result in results])
    offensive = np.array([result.tone.offensive for result in results])
    negative, neutral, positive = (labels == LABELS.index(name) for name in LABELS)
    polar = negative | positive
    agrees = (negative & np.isin(emotions, list(NEGATIVE_EMOTIONS))) | (
        positive & np.isin(emotions, list(POSITIVE_EMOTIONS))
    )
    return {
        "polarity_agreement": float(agrees[polar].mean()),
        "anger_on_negative": float((emotions[negative] == "anger").mean()),
        "sadness_on_negative": float((emotions[negative] == "sadness").mean()),
        "joy_or_optimism_on_positive": float(np.isin(emotions[positive], list(POSITIVE_EMOTIONS)).mean()),
        "offensive_negative": float(offensive[negative].mean()),
        "offensive_neutral": float(offensive[neutral].mean()),
        "offensive_positive": float(offensive[positive].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tone-dir", type=Path, default=TONE_DATA_DIR)
    parser.add_argument("--sentiment-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    started = time.monotonic()
    model = EnrichmentModel.from_settings(Settings())
    print(f"tone {model.versions['tone']}, sentiment {model.versions['sentiment']}, "
          f"encoder {model.versions['encoder']}", flush=True)
    scores = tone_val(model, args.tone_dir)
    print("\nTweetEval validation (English), macro-F1 x100")
    print(f"  emotion (anger, joy, optimism, sadness; 374 tweets): {100 * scores['emotion']:.1f}   target 80")
    print(f"  offensive (OLID; 1,324 tweets):                      {100 * scores['offensive']:.1f}   target 82")

    rows = {}
    for language in LANGUAGES:
        texts, labels = load_split(args.sentiment_dir, language, "val")
        rows[language] = agreement(model.enrich(texts), labels)
    print("\nUMSAB validation (324 tweets per language, balanced negative/neutral/positive), % of tweets:")
    print("emotion-sentiment agreement = anger|sadness on negative or joy|optimism on positive, over the polar tweets")
    header = ["language", "agreement", "anger on neg", "sadness on neg", "joy|optimism on pos",
              "offensive: neg", "neu", "pos"]
    keys = ["polarity_agreement", "anger_on_negative", "sadness_on_negative", "joy_or_optimism_on_positive",
            "offensive_negative", "offensive_neutral", "offensive_positive"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" + "---:|" * (len(header) - 1))
    for language, figures in rows.items():
        print(f"| {language} | " + " | ".join(f"{100 * figures[key]:.1f}" for key in keys) + " |")
    means = {key: float(np.mean([figures[key] for figures in rows.values()])) for key in keys}
    print("| mean | " + " | ".join(f"{100 * means[key]:.1f}" for key in keys) + " |")
    print(f"\n({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
