"""The inference application's plain logic, without Ray: validation, proto conversion, chunking."""

from __future__ import annotations

import pytest

from civic.listening.v1 import inference_pb2, post_pb2
from inference.app import (
    chunked,
    count_texts,
    embed_texts,
    enrich_texts,
    split_like,
    to_enrichment,
)
from inference.model import EnrichmentResult
from inference.tone import EMOTIONS, NO_TONE, Tone
from services.common.errors import InvalidArgument
from services.common.settings import Settings

SETTINGS = Settings(max_text_chars=10, inference_max_request_posts=3)
VERSIONS = {"encoder": "enc@1", "sentiment": "sent@2", "relevance": "rel@3", "tone": "tone@4"}
ANGRY = Tone("anger", {"anger": 0.6, "joy": 0.1, "optimism": 0.1, "sadness": 0.2}, True, 0.8)


def posts(*texts: str) -> inference_pb2.EnrichRequest:
    return inference_pb2.EnrichRequest(posts=[post_pb2.Post(text=text, language="en") for text in texts])


def test_enrich_texts_keeps_request_order() -> None:
    assert enrich_texts(posts("b", "a", ""), SETTINGS) == ["b", "a", ""]


@pytest.mark.parametrize(
    ("request_message", "field", "reason"),
    [
        (posts(), "posts", "must not be empty"),
        (posts("a", "b", "c", "d"), "posts", "more than 3 items"),
        (posts("ok", "x" * 11), "posts[1].text", "longer than 10 characters"),
    ],
)
def test_enrich_texts_names_the_bad_field(
    request_message: inference_pb2.EnrichRequest, field: str, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as error:
        enrich_texts(request_message, SETTINGS)
    assert (error.value.field, error.value.reason) == (field, reason)
    assert str(error.value) == f"{field}: {reason}"


def test_text_at_the_limit_is_accepted() -> None:
    assert enrich_texts(posts("x" * 10), SETTINGS) == ["x" * 10]
    assert embed_texts(inference_pb2.EmbedRequest(texts=["x" * 10]), SETTINGS) == ["x" * 10]


@pytest.mark.parametrize(
    ("texts", "field", "reason"),
    [
        ([], "texts", "must not be empty"),
        (["a"] * 4, "texts", "more than 3 items"),
        (["a", " \n"], "texts[1]", "must not be blank"),
        (["y" * 11], "texts[0]", "longer than 10 characters"),
    ],
)
def test_embed_texts_names_the_bad_field(texts: list[str], field: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        embed_texts(inference_pb2.EmbedRequest(texts=texts, is_query=True), SETTINGS)
    assert (error.value.field, error.value.reason) == (field, reason)


def test_to_enrichment_maps_every_field() -> None:
    result = EnrichmentResult(
        label="negative",
        scores={"negative": 0.7, "neutral": 0.2, "positive": 0.1},
        relevance=[("roads", 0.2), ("passports", 0.9), ("parks", 0.4)],
        topic="passports",
        topics=["passports"],
        embedding=[0.6, 0.8],
        tone=ANGRY,
    )
    enrichment = to_enrichment(result, VERSIONS)
    assert enrichment.sentiment == post_pb2.SENTIMENT_LABEL_NEGATIVE
    assert enrichment.sentiment_scores.negative == pytest.approx(0.7)
    assert enrichment.sentiment_scores.neutral == pytest.approx(0.2)
    assert enrichment.sentiment_scores.positive == pytest.approx(0.1)
    assert [item.topic for item in enrichment.relevance] == ["passports", "parks", "roads"]
    assert enrichment.relevance[0].score == pytest.approx(0.9)
    assert enrichment.topic == "passports"
    assert list(enrichment.topics) == ["passports"]
    assert list(enrichment.embedding) == pytest.approx([0.6, 0.8])
    assert enrichment.model_versions == post_pb2.ModelVersions(
        encoder="enc@1", sentiment="sent@2", relevance="rel@3", tone="tone@4"
    )
    assert enrichment.emotion == post_pb2.EMOTION_ANGER
    assert enrichment.emotion_scores.anger == pytest.approx(0.6)
    assert enrichment.emotion_scores.sadness == pytest.approx(0.2)
    assert enrichment.offensive is True
    assert enrichment.offensive_score == pytest.approx(0.8)


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_every_emotion_maps_to_its_enum(emotion: str) -> None:
    tone = Tone(emotion, {name: float(name == emotion) for name in EMOTIONS}, False, 0.1)
    result = EnrichmentResult("neutral", {"negative": 0, "neutral": 1, "positive": 0}, [], "", [], [1.0], tone)
    assert post_pb2.Emotion.Name(to_enrichment(result, VERSIONS).emotion) == f"EMOTION_{emotion.upper()}"


def test_no_tone_is_unspecified() -> None:
    result = EnrichmentResult("neutral", {"negative": 0, "neutral": 1, "positive": 0}, [], "", [], [1.0], NO_TONE)
    enrichment = to_enrichment(result, VERSIONS)
    assert enrichment.emotion == post_pb2.EMOTION_UNSPECIFIED
    assert (enrichment.offensive, enrichment.offensive_score) == (False, 0.0)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("negative", post_pb2.SENTIMENT_LABEL_NEGATIVE),
        ("neutral", post_pb2.SENTIMENT_LABEL_NEUTRAL),
        ("positive", post_pb2.SENTIMENT_LABEL_POSITIVE),
    ],
)
def test_every_label_maps_to_its_enum(label: str, expected: int) -> None:
    scores = {"negative": 0.0, "neutral": 0.0, "positive": 0.0, label: 1.0}
    result = EnrichmentResult(label=label, scores=scores, relevance=[], topic="", topics=[], embedding=[1.0],
                              tone=NO_TONE)
    assert to_enrichment(result, VERSIONS).sentiment == expected


def test_chunks_and_split_round_trip() -> None:
    items = list(range(7))
    chunks = chunked(items, 3)
    assert chunks == [[0, 1, 2], [3, 4, 5], [6]]
    assert count_texts([["a", "b"], ["c"]]) == 3
    assert split_like(chunks, [item * 10 for item in items]) == [[0, 10, 20], [30, 40, 50], [60]]


def test_split_refuses_a_short_answer() -> None:
    with pytest.raises(ValueError, match="2 results for 3 texts"):
        split_like([["a", "b"], ["c"]], [1, 2])
