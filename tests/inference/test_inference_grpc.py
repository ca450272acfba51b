"""The InferenceService over real gRPC, through Ray Serve's proxy, with the real model."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from civic.listening.v1 import inference_pb2, inference_pb2_grpc, post_pb2
from services.common.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SETTINGS = Settings()
DIMENSIONS = 384
SERVICE = "civic.listening.v1.InferenceService"
EMOTIONS = ("anger", "joy", "optimism", "sadness")

MIXED_TEXTS = [
    "The passport office lost my application and nobody answers the phone.",
    "Thank you to the city crews who fixed the potholes on Main Street so quickly!",
    "La mairie ouvre un nouveau centre de vaccination lundi.",
    "Die Müllabfuhr kommt seit drei Wochen nicht mehr, unerträglich.",
    "El parque renovado es precioso, gracias al ayuntamiento.",
    "Il treno regionale è in ritardo ogni mattina.",
    "O novo horário dos ônibus é confuso.",
    "البلدية لم تصلح إنارة الشارع منذ شهر",
    "पासपोर्ट कार्यालय बहुत धीमा है",
    "ok",
    "🚧🚧 road closed again?! #traffic https://example.org/x",
    "Water main break on 5th Avenue, " * 40,
]


@pytest.fixture(scope="module")
def stub(inference_target: str) -> Iterator[inference_pb2_grpc.InferenceServiceStub]:
    with grpc.insecure_channel(inference_target) as chan:
        yield inference_pb2_grpc.InferenceServiceStub(chan)


def enrich(stub: inference_pb2_grpc.InferenceServiceStub, texts: Sequence[str]) -> list[post_pb2.Enrichment]:
    request = inference_pb2.EnrichRequest(posts=[post_pb2.Post(text=text) for text in texts])
    return list(stub.Enrich(request, timeout=120).enrichments)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def assert_same_enrichment(got: post_pb2.Enrichment, alone: post_pb2.Enrichment) -> None:
    """Same post, other batch: close, not equal. The shipped int8 runtime scales activations per
    batch (bench/README.md measures the spread); another post is far further away than this."""
    assert cosine(got.embedding, alone.embedding) > 0.995
    assert got.sentiment == alone.sentiment
    for field in ("negative", "neutral", "positive"):
        assert getattr(got.sentiment_scores, field) == pytest.approx(getattr(alone.sentiment_scores, field), abs=0.1)
    for field in EMOTIONS:
        assert getattr(got.emotion_scores, field) == pytest.approx(getattr(alone.emotion_scores, field), abs=0.1)
    assert got.offensive_score == pytest.approx(alone.offensive_score, abs=0.1)


@pytest.fixture(scope="module")
def alone(stub: inference_pb2_grpc.InferenceServiceStub) -> dict[str, post_pb2.Enrichment]:
    """Each mixed text enriched on its own: the reference that batched answers must match."""
    return {text: enrich(stub, [text])[0] for text in MIXED_TEXTS}


def test_enrich_answers_in_request_order(
    stub: inference_pb2_grpc.InferenceServiceStub, alone: dict[str, post_pb2.Enrichment]
) -> None:
    # More posts than one encoder batch, so the answer is stitched from several chunks.
    texts = (MIXED_TEXTS * 4)[: SETTINGS.inference_max_batch_size + 7]
    enrichments = enrich(stub, texts)
    assert len(enrichments) == len(texts)
    for text, enrichment in zip(texts, enrichments, strict=True):
        assert_same_enrichment(enrichment, alone[text])


def test_enrichment_fields_are_complete(alone: dict[str, post_pb2.Enrichment]) -> None:
    for enrichment in alone.values():
        assert enrichment.sentiment != post_pb2.SENTIMENT_LABEL_UNSPECIFIED
        scores = enrichment.sentiment_scores
        assert scores.negative + scores.neutral + scores.positive == pytest.approx(1.0, abs=1e-3)
        best = max(("negative", "neutral", "positive"), key=lambda name: getattr(scores, name))
        assert post_pb2.SentimentLabel.Name(enrichment.sentiment) == f"SENTIMENT_LABEL_{best.upper()}"
        relevance = [item.score for item in enrichment.relevance]
        assert relevance == sorted(relevance, reverse=True)
        if enrichment.topic:
            assert enrichment.topic == enrichment.relevance[0].topic
        versions = enrichment.model_versions
        assert versions.encoder and versions.sentiment and versions.relevance
        assert versions.tone.startswith("tweeteval-tone@")
        assert enrichment.emotion != post_pb2.EMOTION_UNSPECIFIED
        emotions = enrichment.emotion_scores
        assert sum(getattr(emotions, name) for name in EMOTIONS) == pytest.approx(1.0, abs=1e-3)
        strongest = max(EMOTIONS, key=lambda name: getattr(emotions, name))
        assert post_pb2.Emotion.Name(enrichment.emotion) == f"EMOTION_{strongest.upper()}"
        assert 0.0 <= enrichment.offensive_score <= 1.0
        assert enrichment.offensive == (enrichment.offensive_score >= 0.5)


def test_enrich_tells_abuse_from_joy(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    abusive, joyful = enrich(stub, [
        "You useless idiots, I am sick and tired of your lies. Shut up and fix the damn roads!",
        "What a wonderful day at the new park with the kids, we loved every minute! 😊",
    ])
    assert (abusive.emotion, abusive.offensive) == (post_pb2.EMOTION_ANGER, True)
    assert (joyful.emotion, joyful.offensive) == (post_pb2.EMOTION_JOY, False)


def test_embeddings_are_normalized_and_distinct(alone: dict[str, post_pb2.Enrichment]) -> None:
    vectors = [list(enrichment.embedding) for enrichment in alone.values()]
    for vector in vectors:
        assert len(vector) == DIMENSIONS
        assert math.fsum(x * x for x in vector) == pytest.approx(1.0, abs=1e-3)
    # Each text is closest to itself, so no enrichment was handed to the wrong post.
    for index, vector in enumerate(vectors):
        similarities = [cosine(vector, other) for other in vectors]
        assert max(range(len(vectors)), key=similarities.__getitem__) == index


def test_embed_queries_find_their_documents(
    stub: inference_pb2_grpc.InferenceServiceStub, alone: dict[str, post_pb2.Enrichment]
) -> None:
    documents = stub.Embed(inference_pb2.EmbedRequest(texts=MIXED_TEXTS, is_query=False), timeout=60)
    queries = stub.Embed(
        inference_pb2.EmbedRequest(texts=["lost passport application", "potholes repaired"], is_query=True),
        timeout=60,
    )
    assert documents.encoder == next(iter(alone.values())).model_versions.encoder
    assert len(documents.embeddings) == len(MIXED_TEXTS)
    assert len(queries.embeddings) == 2
    for embedding in [*documents.embeddings, *queries.embeddings]:
        assert len(embedding.values) == DIMENSIONS
        assert math.fsum(x * x for x in embedding.values) == pytest.approx(1.0, abs=1e-3)
    # Documents embed like the posts they are; queries land nearest the post they describe.
    for text, embedding in zip(MIXED_TEXTS, documents.embeddings, strict=True):
        assert cosine(embedding.values, alone[text].embedding) > 0.995

    def nearest(query: inference_pb2.Embedding) -> str:
        return max(MIXED_TEXTS, key=lambda text: cosine(query.values, alone[text].embedding))

    passport, potholes = queries.embeddings
    assert nearest(passport) == MIXED_TEXTS[0]
    assert nearest(potholes) == MIXED_TEXTS[1]


def test_concurrent_callers_get_their_own_results(
    stub: inference_pb2_grpc.InferenceServiceStub, alone: dict[str, post_pb2.Enrichment]
) -> None:
    batches = [MIXED_TEXTS[shift:] + MIXED_TEXTS[:shift] for shift in range(8)]
    batches = [batch[: 3 + index] for index, batch in enumerate(batches)]
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        answers = list(pool.map(lambda batch: enrich(stub, batch), batches))
    for batch, enrichments in zip(batches, answers, strict=True):
        assert len(enrichments) == len(batch)
        for text, enrichment in zip(batch, enrichments, strict=True):
            assert_same_enrichment(enrichment, alone[text])


def test_health_check_answers_serving(inference_target: str) -> None:
    with grpc.insecure_channel(inference_target) as chan:
        health = health_pb2_grpc.HealthStub(chan)
        for service in ("", SERVICE):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as error:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_service(inference_target: str) -> None:
    with grpc.insecure_channel(inference_target) as chan:
        reflection = reflection_pb2_grpc.ServerReflectionStub(chan)
        replies = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {service.name for reply in replies for service in reply.list_services_response.service}
    assert SERVICE in names


TOO_LONG = "x" * (SETTINGS.max_text_chars + 1)
TOO_MANY = SETTINGS.inference_max_request_posts + 1


def posts(texts: Sequence[str]) -> inference_pb2.EnrichRequest:
    return inference_pb2.EnrichRequest(posts=[post_pb2.Post(text=text) for text in texts])


@pytest.mark.parametrize(
    ("method", "request_message", "details"),
    [
        ("Enrich", posts([]), "posts: must not be empty"),
        ("Enrich", posts(["a"] * TOO_MANY), f"posts: more than {TOO_MANY - 1} items"),
        ("Enrich", posts(["a", "b", "c", TOO_LONG]), "posts[3].text: longer than"),
        ("Embed", inference_pb2.EmbedRequest(), "texts: must not be empty"),
        ("Embed", inference_pb2.EmbedRequest(texts=["a"] * TOO_MANY), "texts: more than"),
        ("Embed", inference_pb2.EmbedRequest(texts=["fine", "  "]), "texts[1]: must not be blank"),
        ("Embed", inference_pb2.EmbedRequest(texts=[TOO_LONG], is_query=True), "texts[0]: longer than"),
    ],
    ids=["no-posts", "too-many-posts", "long-post", "no-texts", "too-many-texts", "blank", "long-text"],
)
def test_bad_input_is_invalid_argument(
    stub: inference_pb2_grpc.InferenceServiceStub, method: str, request_message: object, details: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        getattr(stub, method)(request_message, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(details)
