"""The development data the training scripts and benchmarks read: UMSAB and TweetEval sentiment, the
TweetEval tone tasks (../shared/datasets/, train and validation splits only), and a disk cache of
frozen-encoder embeddings."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from transformers import BertModel

from inference.encoder import ENCODER_VERSION, load_encoder, mean_pooled

LANGUAGES = ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish")

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sentiment"

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

def load_split(data_dir: Path, language: str, split: str) -> tuple[list[str], np.ndarray]:
    folder = data_dir / "umsab" / language
    texts = read_lines(folder / f"{split}_text.txt")
    labels = np.array([int(label) for label in read_lines(folder / f"{split}_labels.txt")])
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} texts but {len(labels)} labels in {split}")
    return texts, labels

TONE_DATA_DIR = DEFAULT_DATA_DIR.parent / "tone"

def load_task(data_dir: Path, task: str, split: str, inputs: dict[str, str]) -> tuple[list[str], np.ndarray]:
    texts_path, labels_path = data_dir / task / f"{split}_text.txt", data_dir / task / f"{split}_labels.txt"
    texts, labels = read_lines(texts_path), np.array([int(label) for label in read_lines(labels_path)])
    if len(texts) != len(labels):
        raise ValueError(f"{texts_path}: {len(texts)} texts but {len(labels)} labels")
    inputs[str(texts_path)], inputs[str(labels_path)] = sha256_file(texts_path), sha256_file(labels_path)
    return texts, labels
