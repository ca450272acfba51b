"""The tone heads: emotion (anger, joy, optimism, sadness) and offensive language.

They are linear layers over features that the one encoder pass per post already computes (the
sentiment tower's pooled output, the post embedding, the mean of the shared lower layers' output),
so tone costs two small matrix products per post and no second encoder pass. Which features a head
file reads is stored in the file itself; inference/training/tone.py chooses them on the validation
splits and documents the choice in inference/artifacts/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from inference.shipped import ARTIFACTS_DIR

EMOTIONS = ("anger", "joy", "optimism", "sadness")
OFFENSIVE_LABELS = ("not-offensive", "offensive")
TONE_FILE = ARTIFACTS_DIR / "tone_heads.safetensors"
# Pooled [batch, hidden] features of one encoder pass, by name: the sentiment tower's output, the
# L2-normalized post embedding, and the mean of the lower layers' output that both branch from.
FEATURES = ("tower", "embedding", "shared")
OFFENSIVE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Tone:
    emotion: str
    emotion_scores: dict[str, float]
    offensive: bool
    offensive_score: float


NO_TONE = Tone("", dict.fromkeys(EMOTIONS, 0.0), False, 0.0)


class ToneHeads(torch.nn.Module):
    def __init__(self, features: tuple[str, ...], emotion: torch.nn.Linear, offensive: torch.nn.Linear) -> None:
        super().__init__()
        unknown = [name for name in features if name not in FEATURES]
        if unknown or not features:
            raise ValueError(f"tone features must be among {FEATURES}, got {features}")
        self.features = features
        self.emotion = emotion
        self.offensive = offensive

    def logits(self, available: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Emotion logits [batch, 4] and offensive logits [batch, 2] from the named features (fp32)."""
        missing = [name for name in self.features if name not in available]
        if missing:
            raise KeyError(f"these tone heads read the features {list(self.features)}, but the encoder pass "
                           f"provides only {sorted(available)}: missing {missing}")
        inputs = torch.cat([available[name].float() for name in self.features], dim=-1)
        return self.emotion(inputs), self.offensive(inputs)

    def forward(self, available: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Emotion probabilities [batch, 4] and offensive probabilities [batch]."""
        emotion, offensive = self.logits(available)
        return torch.softmax(emotion, dim=-1), torch.softmax(offensive, dim=-1)[:, 1]

    def save(self, path: Path) -> None:
        # One metadata key only, so that the header (and the file's checksum) is the same every run.
        state = {name: tensor.detach().float().contiguous() for name, tensor in self.state_dict().items()}
        save_file(state, str(path), metadata={"features": ",".join(self.features)})


def load_tone_heads(path: Path = TONE_FILE) -> ToneHeads:
    with safe_open(str(path), framework="pt") as handle:
        features = tuple(handle.metadata()["features"].split(","))
    state = load_file(str(path))
    heads = ToneHeads(features, _linear(state, "emotion"), _linear(state, "offensive"))
    return heads.eval()


def _linear(state: dict[str, torch.Tensor], prefix: str) -> torch.nn.Linear:
    weight, bias = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
    layer.load_state_dict({"weight": weight, "bias": bias})
    return layer


def tone_of(emotion: list[float], offensive: float) -> Tone:
    """One post's tone from its head outputs: the most likely emotion, offensive at score >= 0.5 (the
    decision threshold chosen in training is folded into the head's bias, so 0.5 holds for every file)."""
    return Tone(
        emotion=EMOTIONS[max(range(len(EMOTIONS)), key=emotion.__getitem__)],
        emotion_scores=dict(zip(EMOTIONS, emotion, strict=True)),
        offensive=offensive >= OFFENSIVE_THRESHOLD,
        offensive_score=offensive,
    )
