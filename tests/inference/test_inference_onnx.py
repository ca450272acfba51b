"""The ONNX Runtime pass against the torch pass it is exported from, and its graph cache keyed by the artifacts."""

from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import inference.model
from inference.encoder import ENCODER_VERSION, encoder_dir
from inference.model import SENTIMENT_TOWER_FILE, EnrichmentModel, EnrichmentResult
from inference.runtime import OnnxPass, graph_path
from inference.tone import NO_TONE
from services.common.settings import Settings

CLEAR = {
    "This is the worst service ever, I am furious and disgusted.": "negative",
    "C'est une honte, service horrible, je suis vraiment en colère.": "negative",
    "Es un desastre total, odio este servicio, qué vergüenza.": "negative",
    "Thank you so much, the staff were wonderful and I love it!": "positive",
    "Vielen Dank, das Team war großartig, ich bin begeistert!": "positive",
    "شكرا جزيلا، الخدمة رائعة وأنا سعيد جدا": "positive",
}
MIXED = [
    "ok",
    "The bus was late again this morning and I missed my appointment at the clinic.",
    "Llevo tres meses esperando la devolución de impuestos y nadie contesta el teléfono.",
    "😡",
    "#passport",
    "मेरा पासपोर्ट अभी तक नहीं आया, बहुत परेशान हूँ",
    "Check the new bus timetable: https://transit.example.org/routes?line=42&day=mon",
]


def _settings(**fields: object) -> Settings:
    # A small batch size makes a dozen texts cross several encoder batches.
    return Settings(inference_max_batch_size=4, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def torch_model() -> EnrichmentModel:
    return EnrichmentModel.from_settings(_settings(inference_runtime="torch"))


@pytest.fixture(scope="module")
def onnx_model() -> EnrichmentModel:
    return EnrichmentModel.from_settings(_settings(inference_runtime="onnx"))


@pytest.fixture(scope="module")
def int8_model() -> EnrichmentModel:
    return EnrichmentModel.from_settings(_settings(inference_runtime="onnx-int8"))


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_versions_name_the_runtime(torch_model: EnrichmentModel, int8_model: EnrichmentModel) -> None:
    assert torch_model.versions["encoder"] == ENCODER_VERSION
    assert int8_model.versions["encoder"] == ENCODER_VERSION + "+onnx-int8"
    for part in ("sentiment", "relevance", "tone"):
        assert int8_model.versions[part] == torch_model.versions[part]


def test_fp32_graph_computes_what_torch_computes(torch_model: EnrichmentModel, onnx_model: EnrichmentModel) -> None:
    texts = [*CLEAR, *MIXED]
    for text, exact, exported in zip(texts, torch_model.enrich(texts), onnx_model.enrich(texts), strict=True):
        assert _cosine(exact.embedding, exported.embedding) > 0.9999, text
        assert exact.label == exported.label, text
        assert all(abs(exact.scores[k] - exported.scores[k]) < 1e-3 for k in exact.scores), text
        assert all(abs(exact.tone.emotion_scores[k] - exported.tone.emotion_scores[k]) < 1e-3
                   for k in exact.tone.emotion_scores), text
        assert exact.topic == exported.topic, text


def test_int8_graph_stays_close_to_torch(torch_model: EnrichmentModel, int8_model: EnrichmentModel) -> None:
    texts = [*CLEAR, *MIXED]
    for text, exact, fast in zip(texts, torch_model.enrich(texts), int8_model.enrich(texts), strict=True):
        assert _cosine(exact.embedding, fast.embedding) > 0.99, text
        assert all(abs(exact.scores[k] - fast.scores[k]) < 0.15 for k in exact.scores), (text, exact.scores)
    assert [result.label for result in int8_model.enrich(list(CLEAR))] == list(CLEAR.values())


def test_results_keep_request_order(int8_model: EnrichmentModel) -> None:
    texts = [*CLEAR, *MIXED]
    random.Random(3).shuffle(texts)
    forward = int8_model.enrich(texts)
    backward = int8_model.enrich(texts[::-1])[::-1]
    alone = [int8_model.enrich([text])[0] for text in texts]
    for text, one, other, single in zip(texts, forward, backward, alone, strict=True):
        # int8 activation scales are per batch, so a post's numbers move slightly with its batch-mates.
        assert _cosine(one.embedding, other.embedding) > 0.995, text
        assert _cosine(one.embedding, single.embedding) > 0.99, text
        assert CLEAR.get(text, one.label) == one.label, text


def test_embed_matches_enrich_embedding(int8_model: EnrichmentModel) -> None:
    texts = list(CLEAR)
    passages = int8_model.embed(texts, is_query=False)
    for vector, result in zip(passages, int8_model.enrich(texts), strict=True):
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-4)
        assert _cosine(vector, result.embedding) > 0.999


def test_empty_blank_and_oversized_input(int8_model: EnrichmentModel) -> None:
    assert int8_model.enrich([]) == []
    assert int8_model.embed([], is_query=True) == []
    blank, spaces, huge, controls = int8_model.enrich(["", "  \n\t ", "word " * 5000, "\x00\x01\x7f"])
    for result in (blank, spaces):
        assert result.label == "neutral" and result.topic == "" and result.tone == NO_TONE
    for result in (huge, controls):  # truncated to max_seq_length / nothing left after normalization
        assert isinstance(result, EnrichmentResult)
        assert math.isclose(sum(result.scores.values()), 1.0, abs_tol=1e-5)
        assert math.isclose(math.sqrt(sum(x * x for x in result.embedding)), 1.0, abs_tol=1e-4)


@pytest.mark.slow
def test_a_changed_tower_is_exported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_model: EnrichmentModel
) -> None:
    """A retrained tower file gets a graph of its own, built from that file; the old graph goes."""
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / encoder_dir(cache).name).symlink_to(encoder_dir(Settings().model_cache_dir))  # no rebuild
    state = load_file(str(SENTIMENT_TOWER_FILE))
    state["head.bias"] = state["head.bias"] + torch.tensor([50.0, 0.0, 0.0])  # everything reads as negative
    tower = tmp_path / "sentiment_tower.safetensors"
    save_file(state, str(tower))
    monkeypatch.setattr(inference.model, "SENTIMENT_TOWER_FILE", tower)
    stale = graph_path(cache, ENCODER_VERSION, SENTIMENT_TOWER_FILE, "onnx")
    stale.parent.mkdir(parents=True)
    shutil.copyfile(__file__, stale)  # stands in for the graph of the shipped tower

    retrained = EnrichmentModel.from_settings(_settings(inference_runtime="onnx", model_cache_dir=cache))

    expected = graph_path(cache, ENCODER_VERSION, tower, "onnx")
    assert expected != stale
    assert sorted(expected.parent.iterdir()) == [expected]
    assert isinstance(retrained._pass, OnnxPass) and retrained._pass.path == expected
    assert retrained.versions["sentiment"] != onnx_model.versions["sentiment"]
    texts = list(CLEAR)
    assert {result.label for result in retrained.enrich(texts)} == {"negative"}
    # The rest of the graph is untouched: same embeddings as the shipped tower's graph.
    for new, old in zip(retrained.enrich(texts), onnx_model.enrich(texts), strict=True):
        assert _cosine(new.embedding, old.embedding) > 0.9999


@pytest.mark.slow
def test_a_read_only_cache_still_gets_a_graph(tmp_path: Path, onnx_model: EnrichmentModel) -> None:
    """Where the cache cannot take the graph (a read-only image), the process exports one for itself."""
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / encoder_dir(cache).name).symlink_to(encoder_dir(Settings().model_cache_dir))
    (cache / "onnx").write_text("not a folder")  # what the graph's folder would be: no folder can go there

    model = EnrichmentModel.from_settings(_settings(inference_runtime="onnx", model_cache_dir=cache))

    assert sorted(path.name for path in cache.iterdir()) == sorted([encoder_dir(cache).name, "onnx"])
    texts = list(CLEAR)
    for new, old in zip(model.enrich(texts), onnx_model.enrich(texts), strict=True):
        assert new.label == old.label
        assert _cosine(new.embedding, old.embedding) > 0.9999
