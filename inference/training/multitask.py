"""Fine-tunes the sentiment tower on sentiment, emotion and offensive language together (multi-task).

    python -m inference.training.multitask [--seed 0] [--epochs 2] [--out-dir DIR]

Starts from the shipped tower (inference/training/finetune.py) and the shipped tone heads
(inference/training/tone.py) and trains the tower's layers, its sentiment head and the tone heads at
once, each batch drawn from one task: UMSAB train (8 languages, a share of it per epoch), TweetEval
emotion train (all of it) and TweetEval offensive train (a sample per epoch). The frozen features the
tone heads also read (post embedding, mean of the lower layers' output) are computed once. After
every epoch, and before the first (the shipped tower and heads), everything is scored on the
validation splits. The epoch kept is the one with the best mean of the emotion and offensive macro-F1,
above the shipped heads' mean, among those whose UMSAB mean macro-F1 and TweetEval recall are not
more than --sentiment-tolerance below the starting tower's (the sentiment must not pay for tone); if
no epoch qualifies, no weights are written. With --fresh-heads the tone heads start at zero over the
tower output alone (refit them afterwards with inference/training/tone.py --tower). Test splits are
never read.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from inference.encoder import ENCODER_VERSION, load_encoder, packed_model_path
from inference.model import LABELS, SENTIMENT_TOWER_FILE
from inference.shipped import ARTIFACTS_DIR
from inference.tone import EMOTIONS, TONE_FILE, ToneHeads, load_tone_heads
from inference.tower import SentimentTower, attention_bias, load_tower
from inference.training.data import (
    DEFAULT_DATA_DIR,
    LANGUAGES,
    TONE_DATA_DIR,
    load_split,
    load_task,
    read_lines,
    sha256_file,
)
from inference.training.metrics import macro_f1, macro_recall
from inference.training.states import cached_lower_states, length_grouped, pad, pooled_features
from services.common.settings import Settings

Split = tuple[list[torch.Tensor], np.ndarray, dict[str, torch.Tensor]]  # states, labels, frozen features


def logits(task: str, tower: SentimentTower, tone: ToneHeads, split: Split, batch: list[int]) -> torch.Tensor:
    """The task's logits for the batch's tweets; the tower's output goes through its dropout first."""
    hidden, mask = pad([split[0][index] for index in batch])
    pooled = tower.dropout(tower.pooled(hidden.float(), mask, attention_bias(mask, torch.float32)))
    if task == "sentiment":
        return tower.head(pooled)
    features = {name: values[batch] for name, values in split[2].items()} | {"tower": pooled}
    emotion, offensive = tone.logits(features)
    return emotion if task == "emotion" else offensive


def predict(task: str, tower: SentimentTower, tone: ToneHeads, split: Split) -> np.ndarray:
    tower.eval()
    order = sorted(range(len(split[0])), key=lambda index: len(split[0][index]))
    predicted = np.zeros(len(order), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            predicted[batch] = logits(task, tower, tone, split, batch).argmax(dim=1).numpy()
    return predicted


def evaluate(tower: SentimentTower, tone: ToneHeads, val: dict[str, Split]) -> dict[str, object]:
    per_language = {language: macro_f1(val[language][1], predict("sentiment", tower, tone, val[language]))
                    for language in LANGUAGES}
    unseen = val["tweeteval"]
    return {
        "umsab_val_macro_f1": per_language,
        "umsab_val_macro_f1_mean": float(np.mean(list(per_language.values()))),
        "tweeteval_val_unseen_macro_recall": macro_recall(unseen[1], predict("sentiment", tower, tone, unseen)),
        "emotion_val_macro_f1": macro_f1(val["emotion"][1], predict("emotion", tower, tone, val["emotion"]),
                                         len(EMOTIONS)),
        "offensive_val_macro_f1": macro_f1(val["offensive"][1], predict("offensive", tower, tone, val["offensive"]),
                                           2),
    }


def summary(figures: dict[str, object]) -> str:
    return (f"UMSAB val mean macro-F1 {100 * figures['umsab_val_macro_f1_mean']:.1f}, "  # type: ignore[operator]
            f"TweetEval unseen recall {100 * figures['tweeteval_val_unseen_macro_recall']:.1f}, "  # type: ignore[operator]
            f"emotion {100 * figures['emotion_val_macro_f1']:.1f}, "  # type: ignore[operator]
            f"offensive {100 * figures['offensive_val_macro_f1']:.1f}")  # type: ignore[operator]


def tone_mean(figures: dict[str, object]) -> float:
    return (figures["emotion_val_macro_f1"] + figures["offensive_val_macro_f1"]) / 2  # type: ignore[operator,no-any-return]


def fresh_heads(hidden_size: int) -> ToneHeads:
    """Zero-initialized heads over the tower output: the shipped heads are folded logistic regressions
    whose large weights on low-variance features AdamW moves off their optimum (the first run's loss)."""
    emotion, offensive = torch.nn.Linear(hidden_size, len(EMOTIONS)), torch.nn.Linear(hidden_size, 2)
    for layer in (emotion, offensive):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    return ToneHeads(("tower",), emotion, offensive)


def epoch_batches(train: dict[str, Split], args: argparse.Namespace, rng: random.Random) -> list[tuple[str, list[int]]]:
    """One epoch: task-pure, length-grouped batches of every task's share, shuffled together."""
    counts = {"sentiment": round(args.sentiment_share * len(train["sentiment"][0])),
              "emotion": len(train["emotion"][0]),
              "offensive": min(args.offensive_per_epoch, len(train["offensive"][0]))}
    batches = []
    for task, count in counts.items():
        repeats = args.emotion_repeats if task == "emotion" else 1
        chosen = [index for _ in range(repeats) for index in rng.sample(range(len(train[task][0])), count)]
        lengths = [len(train[task][0][index]) for index in chosen]
        batches += [(task, [chosen[i] for i in batch]) for batch in length_grouped(lengths, args.batch_size, rng)]
    rng.shuffle(batches)
    return batches


def load_data(args: argparse.Namespace, inputs: dict[str, str]) -> tuple[dict[str, Split], dict[str, Split]]:
    encoder, tokenizer = load_encoder(args.cache_dir)
    depth = len(load_tower(SENTIMENT_TOWER_FILE, encoder).layers)
    upper = encoder.encoder.layer[encoder.config.num_hidden_layers - depth :]

    def split(texts: list[str], labels: np.ndarray, frozen: bool) -> Split:
        if args.limit:
            texts, labels = texts[: args.limit], labels[: args.limit]
        states = cached_lower_states(args.cache_dir, encoder, tokenizer, texts, depth, args.max_length)
        if not frozen:
            return states, labels, {}
        features = {name: torch.from_numpy(values) for name, values in pooled_features(upper, None, states).items()}
        return states, labels, features

    train, val = {}, {}
    sentiment_texts, sentiment_labels = [], []
    for language in LANGUAGES:
        for part in ("train", "val"):
            texts, labels = load_split(args.sentiment_dir, language, part)
            for kind in ("text", "labels"):
                path = args.sentiment_dir / "umsab" / language / f"{part}_{kind}.txt"
                inputs[str(path)] = sha256_file(path)
            if part == "train":
                sentiment_texts += texts
                sentiment_labels.append(labels)
            else:
                val[language] = split(texts, labels, frozen=False)
    train["sentiment"] = split(sentiment_texts, np.concatenate(sentiment_labels), frozen=False)
    tweeteval_dir = args.sentiment_dir / "tweeteval"
    seen = set(read_lines(args.sentiment_dir / "umsab" / "english" / "train_text.txt"))
    tweets, tweet_labels = read_lines(tweeteval_dir / "val_text.txt"), read_lines(tweeteval_dir / "val_labels.txt")
    unseen = [(text, int(label)) for text, label in zip(tweets, tweet_labels, strict=True) if text not in seen]
    for name in ("val_text.txt", "val_labels.txt"):
        inputs[str(tweeteval_dir / name)] = sha256_file(tweeteval_dir / name)
    val["tweeteval"] = split([text for text, _ in unseen], np.array([label for _, label in unseen]), frozen=False)
    for task in ("emotion", "offensive"):
        train[task] = split(*load_task(args.tone_dir, task, "train", inputs), frozen=True)
        val[task] = split(*load_task(args.tone_dir, task, "val", inputs), frozen=True)
    return train, val


Best = tuple[float, int, dict[str, torch.Tensor], dict[str, torch.Tensor]]


def write(tower: SentimentTower, tone: ToneHeads, best: Best | None, args: argparse.Namespace,
          inputs: dict[str, str], start: dict[str, object], history: list[dict[str, object]], started: float) -> None:
    """The record of the run so far and, once an epoch qualifies, the best epoch's tower and tone heads."""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {
        "encoder": ENCODER_VERSION,
        "initialised_from": {"tower_sha256": inputs[str(SENTIMENT_TOWER_FILE)], "tone_sha256": inputs[str(TONE_FILE)]},
        "hyper_parameters": {key: value for key, value in vars(args).items()
                             if key not in ("sentiment_dir", "tone_dir", "cache_dir", "out_dir")},
        "selection": "best mean of emotion and offensive val macro-F1 among epochs whose UMSAB val mean macro-F1 "
                     "and TweetEval unseen recall are not below the start's",
        "data": {"train": "UMSAB train (8 languages), TweetEval emotion and offensive train",
                 "model_selection": "UMSAB val, TweetEval sentiment val (unseen tweets), emotion and offensive val",
                 "inputs_sha256": inputs},
        "start": start, "history": history, "train_seconds": round(time.monotonic() - started),
    }
    if best is not None:
        current = copy.deepcopy(tower.state_dict()), copy.deepcopy(tone.state_dict())
        tower.load_state_dict(best[2])
        tone.load_state_dict(best[3])
        tower.save(args.out_dir / SENTIMENT_TOWER_FILE.name)
        tone.save(args.out_dir / TONE_FILE.name)
        tower.load_state_dict(current[0])
        tone.load_state_dict(current[1])
        record |= {"chosen_epoch": best[1], "figures": history[best[1] - 1],
                   "tower": {"file": SENTIMENT_TOWER_FILE.name,
                             "sha256": sha256_file(args.out_dir / SENTIMENT_TOWER_FILE.name), "labels": list(LABELS)},
                   "tone": {"file": TONE_FILE.name, "sha256": sha256_file(args.out_dir / TONE_FILE.name),
                            "features": list(tone.features)}}
    (args.out_dir / "multitask.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentiment-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--tone-dir", type=Path, default=TONE_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, default=settings.model_cache_dir)
    parser.add_argument("--out-dir", type=Path, default=ARTIFACTS_DIR)
    parser.add_argument("--max-length", type=int, default=settings.max_seq_length)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sentiment-share", type=float, default=0.3, help="share of UMSAB train per epoch")
    parser.add_argument("--offensive-per-epoch", type=int, default=4000, help="offensive train tweets per epoch")
    parser.add_argument("--lr", type=float, default=5e-5, help="top tower layer; lower layers get less")
    parser.add_argument("--layer-decay", type=float, default=0.8)
    parser.add_argument("--head-lr", type=float, default=3e-4)
    parser.add_argument("--emotion-repeats", type=int, default=1, help="passes over emotion train per epoch")
    parser.add_argument("--sentiment-tolerance", type=float, default=0.0,
                        help="how far (macro-F1, 0-1) an epoch's sentiment figures may fall below the start's")
    parser.add_argument("--fresh-heads", action="store_true",
                        help="start the tone heads at zero over the tower output alone, not from the shipped heads")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="tweets per split, for a quick check (0: all)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    started = time.monotonic()

    inputs = {str(packed_model_path()): sha256_file(packed_model_path()),
              str(SENTIMENT_TOWER_FILE): sha256_file(SENTIMENT_TOWER_FILE), str(TONE_FILE): sha256_file(TONE_FILE)}
    train, val = load_data(args, inputs)
    print(f"data ready in {time.monotonic() - started:.0f}s", flush=True)
    encoder, _ = load_encoder(args.cache_dir)
    tower, tone = load_tower(SENTIMENT_TOWER_FILE, encoder), load_tone_heads()
    tower.dropout.p = args.dropout
    start_figures = evaluate(tower, tone, val)  # the shipped model's figures: what an epoch must beat
    print(f"start: {summary(start_figures)}", flush=True)
    if args.fresh_heads:
        tone = fresh_heads(encoder.config.hidden_size)
    del encoder

    groups = [{"params": [*tower.head.parameters(), *tone.parameters()], "lr": args.head_lr}]
    for depth_from_top, layer in enumerate(reversed(tower.layers)):
        groups.append({"params": list(layer.parameters()), "lr": args.lr * args.layer_decay**depth_from_top})
    optimizer = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    plan = [epoch_batches(train, args, rng) for _ in range(args.epochs)]
    total = sum(map(len, plan))
    warmup = int(args.warmup * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / max(warmup, 1), max(0.0, (total - step) / max(total - warmup, 1)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    history: list[dict[str, object]] = []
    best: Best | None = None
    for epoch, batches in enumerate(plan, start=1):
        tower.train()
        tone.train()
        epoch_start, running = time.monotonic(), dict.fromkeys(("sentiment", "emotion", "offensive"), 0.0)
        for step, (task, batch) in enumerate(batches, start=1):
            loss = loss_fn(logits(task, tower, tone, train[task], batch), torch.from_numpy(train[task][1][batch]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*tower.parameters(), *tone.parameters()], 1.0)
            optimizer.step()
            schedule.step()
            running[task] += loss.item()
            if step % 100 == 0:
                print(f"  epoch {epoch} step {step}/{len(batches)} ({time.monotonic() - epoch_start:.0f}s)", flush=True)
        tone.eval()
        figures = evaluate(tower, tone, val) | {"epoch": epoch, "seconds": round(time.monotonic() - epoch_start),
                                                "train_loss_sum": running}
        history.append(figures)
        keeps_sentiment = (
            figures["umsab_val_macro_f1_mean"]  # type: ignore[operator]
            >= start_figures["umsab_val_macro_f1_mean"] - args.sentiment_tolerance  # type: ignore[operator]
            and figures["tweeteval_val_unseen_macro_recall"]  # type: ignore[operator]
            >= start_figures["tweeteval_val_unseen_macro_recall"] - args.sentiment_tolerance  # type: ignore[operator]
        )
        print(f"epoch {epoch}: {summary(figures)}; sentiment kept: {keeps_sentiment} "
              f"({figures['seconds']}s)", flush=True)
        if keeps_sentiment and tone_mean(figures) > tone_mean(start_figures) and (
            best is None or tone_mean(figures) > best[0]
        ):
            best = (tone_mean(figures), epoch, copy.deepcopy(tower.state_dict()), copy.deepcopy(tone.state_dict()))

        # Written after every epoch, so that a stopped run still leaves its best weights and record.
        write(tower, tone, best, args, inputs, start_figures, history, started)
    if best is None:
        print("no epoch improved tone without lowering sentiment: nothing written but multitask.json")
    else:
        print(f"chosen epoch {best[1]}: {summary(history[best[1] - 1])}")


if __name__ == "__main__":
    main()
