"""Fine-tunes the shipped sentiment tower (inference/tower.py) on the UMSAB train splits.

    nice -n 10 python -m inference.training.finetune [--seed 0] [--depth 4] [--epochs 4] [--out-dir DIR]

The encoder's lower layers stay frozen and are shared with the embedding, so their outputs are
computed once for every tweet and kept in memory; training then runs only the tower (a copy of the
top `depth` layers + mean pooling + dropout + a linear layer), which makes an epoch several times
cheaper than a full fine-tune. Batches group tweets of similar length. After every epoch the tower
is scored on the UMSAB validation splits and the epoch with the best mean macro-F1 is kept; test
splits are never read. The printed figures, the data checksums and the hyper-parameters are written
next to the weights (sentiment_tower.json).
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
from inference.model import LABELS, PASSAGE_PREFIX
from inference.shipped import ARTIFACTS_DIR
from inference.tower import SentimentTower, attention_bias
from inference.training.data import DEFAULT_DATA_DIR, LANGUAGES, load_split, read_lines, sha256_file
from inference.training.metrics import macro_f1, macro_recall
from inference.training.states import length_grouped, lower_states, pad
from services.common.settings import Settings

TOWER_FILE = "sentiment_tower.safetensors"


def predict(tower: SentimentTower, states: list[torch.Tensor]) -> np.ndarray:
    tower.eval()
    order = sorted(range(len(states)), key=lambda index: len(states[index]))
    predicted = np.zeros(len(states), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            hidden, mask = pad([states[index] for index in batch])
            logits = tower(hidden.float(), mask, attention_bias(mask, torch.float32))
            predicted[batch] = logits.argmax(dim=1).numpy()
    return predicted


def optimizer_for(tower: SentimentTower, args: argparse.Namespace) -> torch.optim.AdamW:
    """Layer-wise lr decay: the top layer gets args.lr, each one below it args.layer_decay times less."""
    groups = [{"params": tower.head.parameters(), "lr": args.head_lr}]
    for depth_from_top, layer in enumerate(reversed(tower.layers)):
        groups.append({"params": layer.parameters(), "lr": args.lr * args.layer_decay**depth_from_top})
    return torch.optim.AdamW(groups, weight_decay=args.weight_decay)


def write(tower: SentimentTower, best: tuple[float, int, dict[str, torch.Tensor]], history: list[dict[str, object]],
          args: argparse.Namespace, inputs: dict[str, str], train_count: int, unseen_count: int,
          started: float) -> Path:
    """Saves the best epoch's tower and the record of the whole run so far; returns the tower's path."""
    current = copy.deepcopy(tower.state_dict())
    tower.load_state_dict(best[2])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tower_path = args.out_dir / TOWER_FILE
    tower.save(tower_path)
    tower.load_state_dict(current)
    record = {
        "encoder": ENCODER_VERSION,
        "tower": {"file": tower_path.name, "sha256": sha256_file(tower_path), "labels": list(LABELS),
                  "layers": f"copies of the encoder's top {args.depth} layers, fine-tuned, stored in fp16; "
                            "mean pooling, dropout, linear head (fp32)"},
        "input": f"'{PASSAGE_PREFIX}' + text, truncated to {args.max_length} tokens",
        "hyper_parameters": {key: value for key, value in vars(args).items()
                             if key not in ("data_dir", "cache_dir", "out_dir")},
        "selection": f"epoch with the best mean UMSAB val macro-F1: epoch {best[1]} of {len(history)} run",
        "data": {"train": f"UMSAB train, {len(LANGUAGES)} languages, {train_count} tweets",
                 "model_selection": "UMSAB val", "inputs_sha256": inputs,
                 "tweeteval_unseen_val_tweets": unseen_count},
        "history": history,
        "figures": history[best[1] - 1],
        "train_seconds": round(time.monotonic() - started),
    }
    (args.out_dir / "sentiment_tower.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return tower_path


def main() -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, default=settings.model_cache_dir)
    parser.add_argument("--out-dir", type=Path, default=ARTIFACTS_DIR)
    parser.add_argument("--max-length", type=int, default=settings.max_seq_length)
    parser.add_argument("--depth", type=int, default=4, help="top encoder layers fine-tuned in the tower")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--layer-decay", type=float, default=0.8)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=float, default=0.1, help="share of steps with a linear warm-up")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    started = time.monotonic()

    inputs: dict[str, str] = {str(packed_model_path()): sha256_file(packed_model_path())}
    splits: dict[str, tuple[list[str], np.ndarray]] = {}
    for language in LANGUAGES:
        for split in ("train", "val"):
            splits[f"{language}/{split}"] = load_split(args.data_dir, language, split)
            for kind in ("text", "labels"):
                path = args.data_dir / "umsab" / language / f"{split}_{kind}.txt"
                inputs[str(path)] = sha256_file(path)
    tweeteval_dir = args.data_dir / "tweeteval"
    seen = set(read_lines(args.data_dir / "umsab" / "english" / "train_text.txt"))
    tweets, tweet_labels = read_lines(tweeteval_dir / "val_text.txt"), read_lines(tweeteval_dir / "val_labels.txt")
    unseen = [(text, int(label)) for text, label in zip(tweets, tweet_labels, strict=True) if text not in seen]
    splits["tweeteval/val-unseen"] = ([text for text, _ in unseen], np.array([label for _, label in unseen]))
    for name in ("val_text.txt", "val_labels.txt"):
        inputs[str(tweeteval_dir / name)] = sha256_file(tweeteval_dir / name)

    encoder, tokenizer = load_encoder(args.cache_dir)
    states = {name: lower_states(encoder, tokenizer, texts, args.depth, args.max_length)
              for name, (texts, _) in splits.items()}
    print(f"lower-layer states of {sum(map(len, states.values()))} tweets in {time.monotonic() - started:.0f}s",
          flush=True)
    train_names = [f"{language}/train" for language in LANGUAGES]
    train_states = [state for name in train_names for state in states[name]]
    train_labels = torch.from_numpy(np.concatenate([splits[name][1] for name in train_names]))

    tower = SentimentTower.from_encoder(encoder, args.depth, len(LABELS), args.dropout)
    del encoder
    optimizer = optimizer_for(tower, args)
    steps_per_epoch = -(-len(train_states) // args.batch_size)
    total, warmup = steps_per_epoch * args.epochs, int(args.warmup * steps_per_epoch * args.epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / max(warmup, 1), max(0.0, (total - step) / max(total - warmup, 1)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    history, best = [], (-1.0, 0, copy.deepcopy(tower.state_dict()))
    lengths = [len(state) for state in train_states]
    for epoch in range(1, args.epochs + 1):
        tower.train()
        epoch_start, running = time.monotonic(), 0.0
        for step, batch in enumerate(length_grouped(lengths, args.batch_size, rng), start=1):
            hidden, mask = pad([train_states[index] for index in batch])
            logits = tower(hidden.float(), mask, attention_bias(mask, torch.float32))
            loss = loss_fn(logits, train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tower.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            running += loss.item()
            if step % 100 == 0:
                print(f"  epoch {epoch} step {step}/{steps_per_epoch} loss {running / step:.4f}", flush=True)
        per_language = {language: macro_f1(splits[f"{language}/val"][1], predict(tower, states[f"{language}/val"]))
                        for language in LANGUAGES}
        mean = float(np.mean(list(per_language.values())))
        recall = macro_recall(splits["tweeteval/val-unseen"][1], predict(tower, states["tweeteval/val-unseen"]))
        history.append({"epoch": epoch, "train_loss": running / steps_per_epoch, "umsab_val_macro_f1": per_language,
                        "umsab_val_macro_f1_mean": mean, "tweeteval_val_unseen_macro_recall": recall,
                        "seconds": round(time.monotonic() - epoch_start)})
        print(f"epoch {epoch}: loss {running / steps_per_epoch:.4f}, val mean macro-F1 {100 * mean:.1f} "
              + " ".join(f"{lang[:2]} {100 * f1:.1f}" for lang, f1 in per_language.items())
              + f", TweetEval unseen macro-recall {100 * recall:.1f} ({time.monotonic() - epoch_start:.0f}s)",
              flush=True)
        if mean > best[0]:
            best = (mean, epoch, copy.deepcopy(tower.state_dict()))
        # Written after every epoch, so that a stopped run still leaves its best tower and record.
        tower_path = write(tower, best, history, args, inputs, len(train_states), len(unseen), started)
    chosen = history[best[1] - 1]
    print(f"\nchosen epoch {best[1]}")
    for language, score in chosen["umsab_val_macro_f1"].items():  # type: ignore[attr-defined]
        print(f"  {language:<11} val macro-F1 {100 * score:.1f}")
    print(f"  {'mean':<11} val macro-F1 {100 * best[0]:.1f}")
    print(f"TweetEval val ({len(unseen)} tweets unseen in training): macro-recall "
          f"{100 * chosen['tweeteval_val_unseen_macro_recall']:.1f}")  # type: ignore[operator]
    print(f"tower sha256 {sha256_file(tower_path)}")


if __name__ == "__main__":
    main()
