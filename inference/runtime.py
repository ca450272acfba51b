"""The encoder pass behind EnrichmentModel, run by torch or by ONNX Runtime.

One pass per batch: embeddings, the shared lower layers, then the frozen top layers (mean pooled and
L2-normalized: the embedding) and, when a sentiment tower is loaded, the tower (mean pooled: what the
sentiment head and the tone heads read). ``EncoderPass`` is that pass as a torch module: the torch
runtime runs it, and the ONNX runtime exports it once into the model cache, where the graph is named
by a digest of what it was built from (encoder, tower file, precision, exporter versions), so a
retrained tower gets a new graph on the next start and an unchanged one loads in about a second. The
tone heads stay outside the graph: they are small, and retraining them then needs no new export.

On a 2-core CPU ONNX Runtime runs the pass faster than eager torch (fused layer norms and GELU, no
Python between operators), and its int8 path (dynamic quantization, VNNI kernels) faster still: the
figures are in bench/README.md (bench/inference_throughput.py, bench/sentiment_accuracy.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertModel

from inference.model_cache import staging_for
from inference.tower import SentimentTower, attention_bias, masked_mean, run_layers

Runtime = Literal["torch", "onnx", "onnx-int8"]
# The four ways to run the pass on a CPU, by name: (settings.inference_runtime, settings.inference_quantize).
VARIANTS: dict[str, tuple[Runtime, bool]] = {
    "torch-fp32": ("torch", False),
    "torch-int8": ("torch", True),
    "onnx-fp32": ("onnx", False),
    "onnx-int8": ("onnx-int8", False),
}
GRAPH_FORMAT = 2  # bump when the exported graph or its post-processing changes
PAD_ID = 1  # XLM-R's <pad>
# An FFN output projection whose input (after GELU) reaches this on the probe texts stays fp32 in the
# int8 graph: one int8 scale per batch over such a range rounds the ordinary activations (mean
# magnitude ~0.1) away. In multilingual-e5-small seven of the eight lower layers peak at 11-65 (three
# at 30-65); lower layer 3, the top layers and the shipped tower's copies of them stay under 7.
OUTLIER_LIMIT = 10.0
# Where the FFN inputs peak is a property of the weights (a few hidden dimensions, on special tokens
# and punctuation), not of what a post says: a handful of ordinary texts in several scripts show it.
PROBE_TEXTS = (
    "passage: The bus was late again this morning and I missed my appointment at the clinic.",
    "passage: Merci beaucoup, le personnel était génial, je suis ravi !",
    "passage: Es un desastre total, odio este servicio, qué vergüenza.",
    "passage: Die Müllabfuhr ist heute wieder nicht gekommen, die Tonnen quellen über.",
    "passage: خدمة سيئة جدا، أنا غاضب ومستاء",
    "passage: मेरा पासपोर्ट अभी तक नहीं आया, बहुत परेशान हूँ",
    "passage: 😡 #passport",
    "passage: ok",
)
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask")
_OUTPUTS = ("embedding", "shared", "sentiment", "tower")


@dataclass
class PassOutput:
    """Per-post results of one encoder pass (fp32, [batch, ...]); the tower's are None without a tower."""

    embedding: torch.Tensor  # L2-normalized mean of the top layers' output
    shared: torch.Tensor  # mean of the shared lower layers' output
    sentiment: torch.Tensor | None  # the tower's sentiment logits
    tower: torch.Tensor | None  # the tower's mean-pooled output


class EncoderPass(torch.nn.Module):
    """The whole pass as one module: what the torch runtime calls and what the ONNX export traces."""

    def __init__(self, encoder: BertModel, tower: SentimentTower | None) -> None:
        super().__init__()
        self.embeddings = encoder.embeddings
        # The tower branches off below the encoder's top layers: those layers run once per post for both.
        split = encoder.config.num_hidden_layers - (len(tower.layers) if tower is not None else 0)
        self.lower, self.upper = encoder.encoder.layer[:split], encoder.encoder.layer[split:]
        self.tower = tower

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, heads: bool = True) -> tuple[torch.Tensor, ...]:
        """(embedding, shared) and, with heads and a tower, (sentiment logits, tower pooled)."""
        hidden = self.embeddings(input_ids=ids)
        bias = attention_bias(mask, hidden.dtype)
        shared = run_layers(self.lower, hidden, bias)
        top = run_layers(self.upper, shared, bias)
        embedding = torch.nn.functional.normalize(masked_mean(top.float(), mask), dim=-1)
        outputs = (embedding, masked_mean(shared.float(), mask))
        if not heads or self.tower is None:
            return outputs
        pooled = self.tower.pooled(shared, mask, bias)
        return (*outputs, self.tower.head(pooled), pooled)

    def run(self, ids: np.ndarray, mask: np.ndarray, heads: bool) -> PassOutput:
        device = self.embeddings.word_embeddings.weight.device
        with torch.inference_mode():
            outputs = self(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device), heads)
        return _pass_output(list(outputs))


def padded(token_ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists to [batch, longest] input ids (padded with <pad>) and the 0/1 attention mask."""
    ids = np.full((len(token_ids), max(len(row) for row in token_ids)), PAD_ID, dtype=np.int64)
    mask = np.zeros(ids.shape, dtype=np.int64)
    for row, tokens in enumerate(token_ids):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    return ids, mask


def _pass_output(outputs: list[torch.Tensor]) -> PassOutput:
    sentiment, tower = (outputs[2], outputs[3]) if len(outputs) == 4 else (None, None)
    return PassOutput(outputs[0], outputs[1], sentiment, tower)


class OnnxPass:
    """The exported pass in an ONNX Runtime session on the CPU."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Idle threads sleep instead of spinning: behind Serve the proxy and ingress need those cores
        # (Serve / in-process 0.83 -> 0.95 at batch 32; in-process speed unchanged).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._outputs = [output.name for output in self._session.get_outputs()]
        self.path = path

    def run(self, ids: np.ndarray, mask: np.ndarray, heads: bool) -> PassOutput:
        """The graph always computes the tower too: heads only says what the caller reads."""
        outputs = self._session.run(self._outputs, {"input_ids": ids, "attention_mask": mask})
        return _pass_output([torch.from_numpy(output) for output in outputs])


def graph_path(cache_dir: Path, encoder_version: str, tower_file: Path | None, runtime: Runtime) -> Path:
    """Where the graph of these artifacts lives: named by a digest of everything the export depends on."""
    import onnxruntime

    digest = hashlib.sha256(f"{GRAPH_FORMAT}|{encoder_version}|{runtime}|{OUTLIER_LIMIT}|{torch.__version__}|"
                            f"{onnxruntime.__version__}|".encode())
    digest.update(tower_file.read_bytes() if tower_file is not None else b"no tower")
    return cache_dir / "onnx" / runtime / f"enrichment-{digest.hexdigest()[:16]}.onnx"


def export_graph(module: EncoderPass, tokenizer: Tokenizer, target: Path, runtime: Runtime) -> Path:
    """Exports, fuses and (for onnx-int8) quantizes the pass into target, unless it is there already.

    Replicas that start together may all export (inference/model_cache.py). A new graph replaces the
    others in its folder (the runtime's graphs of earlier artifacts, some 450 MB each, mostly the fp32
    token embeddings).
    """
    if target.exists():
        return target
    with staging_for(target) as staging:
        raw, fused, final = staging / "raw.onnx", staging / "fused.onnx", staging / "final.onnx"
        _export(module, raw)
        layer = module.lower[0].attention.self
        _fuse(raw, fused, layer.num_attention_heads, layer.all_head_size)
        if runtime == "onnx-int8":
            _quantize(fused, final, _outlier_projections(module, tokenizer))
        else:
            fused.rename(final)
        os.rename(final, target)
    for stale in target.parent.glob("enrichment-*.onnx"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def _export(module: EncoderPass, path: Path) -> None:
    ids = torch.full((2, 7), 5, dtype=torch.long)
    mask = torch.ones((2, 7), dtype=torch.long)
    mask[1, 5:] = 0
    outputs = _OUTPUTS if module.tower is not None else _OUTPUTS[:2]
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS} | {name: {0: "batch"} for name in outputs}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter still works and needs no onnxscript; torch announces that it is legacy.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (ids, mask), str(path), dynamo=False, opset_version=_OPSET,
                          input_names=list(_INPUTS), output_names=list(outputs), dynamic_axes=axes)


def _fuse(source: Path, target: Path, num_heads: int, hidden_size: int) -> None:
    """ONNX Runtime's BERT fusions (SkipLayerNormalization, BiasGelu) before quantization, which would hide them."""
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(str(source), model_type="bert", num_heads=num_heads,
                                     hidden_size=hidden_size, opt_level=0)
    model.save_model_to_file(str(target))


def _outlier_projections(module: EncoderPass, tokenizer: Tokenizer) -> set[str]:
    """Digests of the (transposed, as exported) weights of the FFN output projections to keep fp32."""
    layers = [*module.lower, *module.upper, *(module.tower.layers if module.tower is not None else [])]
    projections = [layer.output.dense for layer in layers]
    peaks: dict[int, float] = {}
    hooks = [
        projection.register_forward_hook(
            lambda _module, inputs, _output, index=index: peaks.__setitem__(index, float(inputs[0].abs().max()))
        )
        for index, projection in enumerate(projections)
    ]
    try:
        module.run(*padded([encoding.ids for encoding in tokenizer.encode_batch(list(PROBE_TEXTS))]), heads=True)
    finally:
        for hook in hooks:
            hook.remove()
    return {_digest(projections[index].weight.detach().T.numpy()) for index, peak in peaks.items()
            if peak >= OUTLIER_LIMIT}


def _digest(weight: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(weight, dtype=np.float32).tobytes()).hexdigest()


def _quantize(source: Path, target: Path, keep: set[str]) -> None:
    """int8 weights per output channel, activations quantized per batch (dynamic), VNNI kernels.

    The MatMuls whose weights are in keep (by digest) stay fp32: they are found by their weights
    because the exporter names nodes after the module call path, which differs between the encoder's
    layers and the tower's. On UMSAB validation (mean macro-F1 over 8 languages, fp32 63.3): keeping
    all 16 FFN output projections fp32 gave 63.6, keeping the three that peak over 30 gave 62.9 and
    keeping the seven that peak over 10 (OUTLIER_LIMIT) gave 63.5. Against keeping all 16, keeping
    eight ran 1.18 times as fast and keeping three 1.29 times (batch 32, one run).
    Quantizing all of them moved 7 % of the English sentiment labels.
    """
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source)).graph
    weights = {initializer.name: initializer for initializer in graph.initializer}
    excluded = [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in weights
                and _digest(numpy_helper.to_array(weights[node.input[1]])) in keep]
    if len(excluded) != len(keep):
        raise RuntimeError(f"found {len(excluded)} of the {len(keep)} projections to keep fp32 in the exported graph")
    logging.getLogger().addFilter(_no_preprocessing_advice)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=excluded,
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        logging.getLogger().removeFilter(_no_preprocessing_advice)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """The quantizer advises, on the root logger, a pre-processing pass that is meant for convolutional models."""
    return "pre-processing before quantization" not in record.getMessage()
