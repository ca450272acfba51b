"""Topic relevance: how close a post sits to each topic description, calibrated to [0, 1].

E5 cosines sit high for any pair of texts (an unrelated sentence still scores ~.78) and their level
differs from one topic description to the next, so a raw cosine threshold means nothing. Each topic's
cosine is turned into a z-score against a background of ordinary tweets (the UMSAB training tweets,
summarized as a mean vector and the leading principal components of their covariance, so that the
background of any new topic description follows from its vector alone), and the z-score goes through
a logistic mapping whose midpoint is the background's 99th percentile: a relevance of 0.5 means
"closer to the topic than 99 of 100 ordinary tweets". The numbers are fitted by
inference/train_sentiment.py and documented in inference/artifacts/README.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
DEFAULT_TOPICS_FILE = Path(__file__).parent / "topics.yaml"
CALIBRATION_FILE = ARTIFACTS_DIR / "relevance_background.safetensors"
CALIBRATION_JSON = ARTIFACTS_DIR / "relevance.json"
TOPIC_THRESHOLD = 0.5


def load_topics(path: Path | None) -> dict[str, str]:
    """Topic name -> description, from path or the shipped default list."""
    source = path or DEFAULT_TOPICS_FILE
    topics = yaml.safe_load(source.read_text(encoding="utf-8"))
    if not isinstance(topics, dict) or not topics:
        raise ValueError(f"{source}: expected a non-empty mapping of topic name -> description")
    for name, description in topics.items():
        if not isinstance(name, str) or not isinstance(description, str) or not description.strip():
            raise ValueError(f"{source}: topic {name!r} needs a non-empty text description")
    return dict(topics)


@dataclass(frozen=True)
class Background:
    """The cosine distribution of ordinary tweets against any unit vector, and the mapping's shape.

    ``components`` holds principal directions scaled by their standard deviations; variance outside
    them is spread evenly (``residual_variance`` per dimension).
    """

    mean: torch.Tensor
    components: torch.Tensor
    residual_variance: float
    z_midpoint: float
    z_scale: float

    @classmethod
    def fit(cls, embeddings: torch.Tensor, n_components: int) -> Background:
        """Mean and leading components of background embeddings; the mapping is set by calibrate()."""
        mean = embeddings.mean(dim=0)
        centered = embeddings - mean
        covariance = centered.T @ centered / (len(embeddings) - 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        top = eigenvalues.argsort(descending=True)[:n_components]
        rest = eigenvalues.sum() - eigenvalues[top].sum()
        residual = float(rest) / (len(eigenvalues) - n_components)
        components = (eigenvectors[:, top] * eigenvalues[top].clamp(min=0).sqrt()).T
        return cls(mean, components.contiguous(), residual, 0.0, 1.0)

    def z_scores(self, embeddings: torch.Tensor, topic_vectors: torch.Tensor) -> torch.Tensor:
        mean, std = self.moments(topic_vectors)
        return (embeddings @ topic_vectors.T - mean) / std

    def moments(self, topic_vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of background cosines against each (unit) topic vector."""
        mean = topic_vectors @ self.mean
        projected = topic_vectors @ self.components.T
        inside = (topic_vectors @ (self.components.T / self.components.norm(dim=1))).pow(2).sum(dim=1)
        variance = projected.pow(2).sum(dim=1) + self.residual_variance * (1.0 - inside).clamp(min=0)
        return mean, variance.sqrt()

    def relevance(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((z - self.z_midpoint) / self.z_scale)

    def save(self, tensors_path: Path, json_path: Path, extra: dict[str, object]) -> None:
        from safetensors.torch import save_file

        save_file({"mean": self.mean.contiguous(), "components": self.components}, str(tensors_path))
        record = {
            "residual_variance": self.residual_variance,
            "z_midpoint": self.z_midpoint,
            "z_scale": self.z_scale,
            "tensors": {"file": tensors_path.name, "sha256": hashlib.sha256(tensors_path.read_bytes()).hexdigest()},
            **extra,
        }
        json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, tensors_path: Path = CALIBRATION_FILE, json_path: Path = CALIBRATION_JSON) -> Background:
        tensors = load_file(str(tensors_path))
        record = json.loads(json_path.read_text(encoding="utf-8"))
        return cls(
            tensors["mean"].float(),
            tensors["components"].float(),
            float(record["residual_variance"]),
            float(record["z_midpoint"]),
            float(record["z_scale"]),
        )


class TopicScorer:
    """Relevance of post embeddings to a fixed set of topic embeddings."""

    def __init__(self, names: list[str], topic_vectors: torch.Tensor, background: Background) -> None:
        self.names = names
        self._vectors = topic_vectors.float()
        self._background = background
        mean, std = background.moments(self._vectors.cpu())
        self._mean, self._std = mean.to(self._vectors.device), std.to(self._vectors.device)

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[posts, topics] relevance in [0, 1]; embeddings are unit passage vectors."""
        z = (embeddings.float() @ self._vectors.T - self._mean) / self._std
        return self._background.relevance(z)


def topics_checksum(topics: dict[str, str], background: Background) -> str:
    """Short digest of everything that decides a relevance score except the encoder."""
    digest = hashlib.sha256(json.dumps(topics, sort_keys=True, ensure_ascii=False).encode())
    digest.update(background.mean.numpy().tobytes())
    digest.update(json.dumps([background.residual_variance, background.z_midpoint, background.z_scale]).encode())
    return digest.hexdigest()[:12]
