"""How ordinary posts sit against any topic vector: the yardstick that makes scores comparable.

E5 cosines sit high for any pair of texts (an unrelated sentence still scores ~.78) and their level
differs from one topic vector to the next, so a raw cosine means nothing. Each cosine is turned into
a z-score against the cosines that ordinary tweets (the UMSAB training tweets) have with the same
vector. Those tweets are summarized by their mean embedding and the leading principal components
of their covariance, so the background of any new topic vector follows from the vector alone, with
no tweets at run time. Fitted by inference/training/sentiment.py (artifacts/background.json).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
BACKGROUND_FILE = ARTIFACTS_DIR / "background.safetensors"
BACKGROUND_JSON = ARTIFACTS_DIR / "background.json"


@dataclass(frozen=True)
class Background:
    """``components`` holds principal directions scaled by their standard deviations; variance outside
    them is spread evenly (``residual_variance`` per dimension)."""

    mean: np.ndarray
    components: np.ndarray
    residual_variance: float

    @classmethod
    def fit(cls, embeddings: np.ndarray, n_components: int) -> Background:
        data = embeddings.astype(np.float64)
        mean = data.mean(axis=0)
        centered = data - mean
        covariance = centered.T @ centered / (len(data) - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        top = np.argsort(eigenvalues)[::-1][:n_components]
        rest = eigenvalues.sum() - eigenvalues[top].sum()
        residual = float(rest) / (len(eigenvalues) - n_components)
        components = (eigenvectors[:, top] * np.sqrt(np.clip(eigenvalues[top], 0, None))).T
        return cls(mean.astype(np.float32), np.ascontiguousarray(components, dtype=np.float32), residual)

    def moments(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of ordinary posts' cosines with each (unit) vector."""
        mean = vectors @ self.mean
        projected = vectors @ self.components.T
        directions = self.components / np.linalg.norm(self.components, axis=1, keepdims=True)
        inside = np.square(vectors @ directions.T).sum(axis=1)
        variance = np.square(projected).sum(axis=1) + self.residual_variance * np.clip(1.0 - inside, 0, None)
        return mean, np.sqrt(variance)

    def sample(self, count: int, seed: int) -> np.ndarray:
        """Unit vectors drawn from the fitted distribution: ordinary posts, for a classifier to tell
        a topic from (the same draw for the same seed)."""
        rng = np.random.default_rng(seed)
        vectors = (self.mean + rng.standard_normal((count, len(self.components))).astype(np.float32) @ self.components
                   + rng.standard_normal((count, len(self.mean))).astype(np.float32) * np.sqrt(self.residual_variance))
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    def z_scores(self, embeddings: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """[posts, vectors] cosines as z-scores against ordinary posts."""
        mean, std = self.moments(vectors)
        return (embeddings @ vectors.T - mean) / std

    def checksum(self) -> str:
        digest = hashlib.sha256(self.mean.tobytes())
        digest.update(self.components.tobytes())
        return digest.hexdigest()[:12]

    def save(self, tensors_path: Path, json_path: Path, extra: dict[str, object]) -> None:
        save_file({"mean": self.mean, "components": self.components}, str(tensors_path))
        record = {
            "residual_variance": self.residual_variance,
            "tensors": {"file": tensors_path.name, "sha256": hashlib.sha256(tensors_path.read_bytes()).hexdigest()},
            **extra,
        }
        json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, tensors_path: Path = BACKGROUND_FILE, json_path: Path = BACKGROUND_JSON) -> Background:
        tensors = load_file(str(tensors_path))
        record = json.loads(json_path.read_text(encoding="utf-8"))
        return cls(tensors["mean"].astype(np.float32), tensors["components"].astype(np.float32),
                   float(record["residual_variance"]))
