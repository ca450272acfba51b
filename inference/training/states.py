"""Encoder states below the fine-tuned layers, computed once per text and cached, and the pooled
features the heads read: what the tower and tone training scripts share."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertModel

from inference.encoder import ENCODER_VERSION
from inference.model import PASSAGE_PREFIX
from inference.tone import FEATURES
from inference.tower import SentimentTower, attention_bias, masked_mean, run_layers


def lower_states(
    encoder: BertModel, tokenizer: Tokenizer, texts: list[str], depth: int, max_length: int
) -> list[torch.Tensor]:
    """Per text, the [tokens, hidden] output of the frozen layers below the tower (fp16 to halve memory)."""
    tokenizer.enable_truncation(max_length)
    encodings = tokenizer.encode_batch([PASSAGE_PREFIX + text for text in texts])
    order = sorted(range(len(texts)), key=lambda index: len(encodings[index].ids))
    lower = encoder.encoder.layer[: encoder.config.num_hidden_layers - depth]
    states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            ids, mask = pad([torch.tensor(encodings[index].ids) for index in batch])
            hidden = run_layers(lower, encoder.embeddings(input_ids=ids), attention_bias(mask, torch.float32))
            for row, index in enumerate(batch):
                states[index] = hidden[row, : len(encodings[index].ids)].half().clone()
    return states

def pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads 1-D id rows (pad id 1) or 2-D state rows (zeros); returns the batch and its mask."""
    width = max(len(row) for row in rows)
    batch = torch.full((len(rows), width, *rows[0].shape[1:]), 1 if rows[0].dim() == 1 else 0, dtype=rows[0].dtype)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        batch[index, : len(row)] = row
        mask[index, : len(row)] = 1
    return batch, mask

def length_grouped(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length: sort within shuffled pools of 50 batches, then shuffle batches."""
    indices = list(range(len(lengths)))
    rng.shuffle(indices)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(indices), pool):
        chunk = sorted(indices[start : start + pool], key=lengths.__getitem__)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches

def cached_lower_states(
    cache_dir: Path, encoder: BertModel, tokenizer: Tokenizer, texts: list[str], depth: int, max_length: int
) -> list[torch.Tensor]:
    """lower_states of the texts, kept on disk by encoder, depth, length and a digest of the texts."""
    key = "\n".join([ENCODER_VERSION, str(depth), str(max_length), *texts])
    path = cache_dir / "lower_states" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    if path.exists():
        cached: list[torch.Tensor] = torch.load(path)
        return cached
    started = time.monotonic()
    states = lower_states(encoder, tokenizer, texts, depth, max_length)
    print(f"  lower-layer states of {len(texts)} tweets in {time.monotonic() - started:.0f}s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    torch.save(states, staging)
    staging.rename(path)
    return states

def pooled_features(
    upper: torch.nn.ModuleList, tower: SentimentTower | None, states: list[torch.Tensor]
) -> dict[str, np.ndarray]:
    """The features in tone.FEATURES, computed from the lower layers' output as EnrichmentModel does
    ("tower" only when a tower is given)."""
    order = sorted(range(len(states)), key=lambda index: len(states[index]))
    names = FEATURES if tower is not None else tuple(name for name in FEATURES if name != "tower")
    features = {name: np.zeros((len(states), states[0].shape[-1]), dtype=np.float32) for name in names}
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            hidden, mask = pad([states[index] for index in batch])
            hidden = hidden.float()
            bias = attention_bias(mask, torch.float32)
            top = masked_mean(run_layers(upper, hidden, bias), mask)
            features["embedding"][batch] = torch.nn.functional.normalize(top, dim=-1).numpy()
            if tower is not None:
                features["tower"][batch] = tower.pooled(hidden, mask, bias).numpy()
            features["shared"][batch] = masked_mean(hidden, mask).numpy()
    return features
