"""The InferenceService as a Ray Serve application: a thin gRPC ingress in front of a batching model.

The ingress validates a request, cuts its texts into chunks of at most ``max_batch_size`` and sends
each chunk to the model deployment as one handle call; the model deployment's ``@serve.batch``
methods merge chunks from all callers into encoder passes of at most ``max_batch_size`` texts (the
batch size counts texts, not calls, so one large request cannot blow up an encoder pass). The model
deployment also turns results into protos, so that the ingress never imports torch.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2
from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from civic.listening.v1 import inference_pb2, post_pb2
from services.common import enum_names, telemetry
from services.common.auth import Authenticator, authorize
from services.common.errors import InvalidArgument
from services.common.settings import Settings, get_settings
from services.common.status import MAPPED, status_of
from services.common.tenancy import scope_to_tenant

if TYPE_CHECKING:
    from ray.serve.grpc_util import RayServegRPCContext

    from inference.model import EnrichmentModel, EnrichmentResult

log = logging.getLogger(__name__)

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name
ENRICH_METHOD = f"/{SERVICE_NAME}/Enrich"
EMBED_METHOD = f"/{SERVICE_NAME}/Embed"
GRPC_SERVICER_FUNCTIONS = [
    "civic.listening.v1.inference_pb2_grpc.add_InferenceServiceServicer_to_server",
    "grpc_health.v1.health_pb2_grpc.add_HealthServicer_to_server",
]
# The ingress only awaits the model, so it can hold many calls; past the queue bound the proxy
# answers RESOURCE_EXHAUSTED instead of letting latency grow without limit.
INGRESS_MAX_ONGOING_REQUESTS = 64
INGRESS_MAX_QUEUED_REQUESTS = 256
# Stopping drops calls in flight after a second rather than Serve's default 20 s: clients retry.
SHUTDOWN_WAIT_LOOP_S = 0.1
SHUTDOWN_TIMEOUT_S = 1.0

T = TypeVar("T")


# --- validation ----------------------------------------------------------------------------------


def _check_count(field: str, count: int, settings: Settings) -> None:
    if count == 0:
        raise InvalidArgument(field, "must not be empty")
    if count > settings.inference_max_request_posts:
        raise InvalidArgument(field, f"more than {settings.inference_max_request_posts} items")


def _check_length(field: str, text: str, settings: Settings) -> None:
    if len(text) > settings.max_text_chars:
        raise InvalidArgument(field, f"longer than {settings.max_text_chars} characters")


def enrich_texts(request: inference_pb2.EnrichRequest, settings: Settings) -> list[str]:
    """The texts to enrich, or InvalidArgument naming the first bad field."""
    _check_count("posts", len(request.posts), settings)
    for index, post in enumerate(request.posts):
        _check_length(f"posts[{index}].text", post.text, settings)
    return [post.text for post in request.posts]


def embed_texts(request: inference_pb2.EmbedRequest, settings: Settings) -> list[str]:
    """The texts to embed, or InvalidArgument naming the first bad field."""
    _check_count("texts", len(request.texts), settings)
    for index, text in enumerate(request.texts):
        field = f"texts[{index}]"
        if not text.strip():
            raise InvalidArgument(field, "must not be blank")
        _check_length(field, text, settings)
    return list(request.texts)


# --- conversion and chunking ---------------------------------------------------------------------


def to_enrichment(result: EnrichmentResult, versions: dict[str, str]) -> post_pb2.Enrichment:
    relevance = sorted(result.relevance, key=lambda pair: pair[1], reverse=True)
    tone = result.tone
    return post_pb2.Enrichment(
        sentiment=enum_names.SENTIMENTS[result.label],
        sentiment_scores=post_pb2.SentimentScores(
            negative=result.scores["negative"],
            neutral=result.scores["neutral"],
            positive=result.scores["positive"],
        ),
        relevance=[post_pb2.TopicRelevance(topic=topic, score=score) for topic, score in relevance],
        topic=result.topic,
        topics=result.topics,
        embedding=result.embedding,
        model_versions=post_pb2.ModelVersions(
            encoder=versions["encoder"],
            sentiment=versions["sentiment"],
            relevance=versions["relevance"],
            tone=versions["tone"],
        ),
        emotion=enum_names.EMOTIONS.get(tone.emotion, post_pb2.EMOTION_UNSPECIFIED),
        emotion_scores=post_pb2.EmotionScores(**tone.emotion_scores),
        offensive=tone.offensive,
        offensive_score=tone.offensive_score,
    )


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def split_like(chunks: Sequence[Sequence[Any]], flat: Sequence[T]) -> list[list[T]]:
    """Cuts flat back into pieces as long as chunks, so each caller gets its own results."""
    if len(flat) != sum(len(chunk) for chunk in chunks):
        raise ValueError(f"model returned {len(flat)} results for {sum(map(len, chunks))} texts")
    pieces, start = [], 0
    for chunk in chunks:
        pieces.append(list(flat[start : start + len(chunk)]))
        start += len(chunk)
    return pieces


def count_texts(chunks: list[list[str]]) -> int:
    return sum(len(chunk) for chunk in chunks)


class Chunk(list[str]):
    """The texts of one handle call, with the traceparent of the request they belong to, so that the
    batch they get merged into can link back to every request it serves."""

    def __init__(self, texts: Iterable[str], trace: str) -> None:
        super().__init__(texts)
        self.trace = trace


# --- deployments ---------------------------------------------------------------------------------


class ModelServer:
    """Holds one EnrichmentModel and runs it on batches merged across all callers."""

    def __init__(self, settings: Settings) -> None:
        import torch

        from inference.model import EnrichmentModel  # torch stays out of the ingress and driver

        telemetry.setup("inference", settings.log_level)  # each replica is a process of its own
        self._model: EnrichmentModel = EnrichmentModel.from_settings(settings)
        self._versions = dict(self._model.versions)
        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        batched_methods: list[Any] = [self.enrich, self.embed_queries, self.embed_passages]
        for batched in batched_methods:
            batched.set_max_batch_size(settings.inference_max_batch_size)
            batched.set_batch_wait_timeout_s(settings.inference_batch_wait_s)
        log.info("model ready: %s", self._versions)

    @serve.batch(batch_size_fn=count_texts)
    async def enrich(self, chunks: list[Chunk]) -> list[list[post_pb2.Enrichment]]:
        texts = [text for chunk in chunks for text in chunk]
        traces = [chunk.trace for chunk in chunks]
        with telemetry.model_batch("enrich", traces, len(texts), self._versions["encoder"], self._device):
            # A worker thread keeps the replica's event loop free to queue the next batch meanwhile.
            results = await asyncio.to_thread(self._model.enrich, texts)
        return split_like(chunks, [to_enrichment(result, self._versions) for result in results])

    @serve.batch(batch_size_fn=count_texts)
    async def embed_queries(self, chunks: list[Chunk]) -> list[list[list[float]]]:
        return await self._embed(chunks, is_query=True)

    @serve.batch(batch_size_fn=count_texts)
    async def embed_passages(self, chunks: list[Chunk]) -> list[list[list[float]]]:
        return await self._embed(chunks, is_query=False)

    def encoder(self) -> str:
        return self._versions["encoder"]

    async def _embed(self, chunks: list[Chunk], is_query: bool) -> list[list[list[float]]]:
        texts = [text for chunk in chunks for text in chunk]
        traces = [chunk.trace for chunk in chunks]
        task = "embed_query" if is_query else "embed_passage"
        with telemetry.model_batch(task, traces, len(texts), self._versions["encoder"], self._device):
            vectors = await asyncio.to_thread(self._model.embed, texts, is_query)
        return split_like(chunks, vectors)


class InferenceIngress:
    """The gRPC face of the application: one method per RPC, named as in the proto."""

    def __init__(self, model: DeploymentHandle, settings: Settings) -> None:
        telemetry.setup("inference", settings.log_level)
        self._model = model
        self._settings = settings
        self._encoder: str | None = None
        self._auth = Authenticator.from_settings(settings)

    def _admit(self, method: str, request: Any, grpc_context: RayServegRPCContext) -> None:
        """What the security interceptor does elsewhere (Ray's proxy takes no interceptors): the
        bearer token, the method's role, and posts pinned to the caller's tenant (SECURITY.md)."""
        if self._auth is None:
            return
        principal = self._auth.authenticate(grpc_context.invocation_metadata())
        authorize(principal, method)
        if not principal.any_tenant:
            scope_to_tenant(request, principal.tenant)

    # The proxy calls methods by their RPC name, hence the capitals.
    async def Enrich(
        self, request: inference_pb2.EnrichRequest, grpc_context: RayServegRPCContext
    ) -> inference_pb2.EnrichResponse:
        async def answer() -> inference_pb2.EnrichResponse:
            self._admit(ENRICH_METHOD, request, grpc_context)
            texts = enrich_texts(request, self._settings)
            pieces = await self._in_chunks(self._model.enrich.remote, texts)
            return inference_pb2.EnrichResponse(enrichments=[e for piece in pieces for e in piece])

        with telemetry.server_span(ENRICH_METHOD, grpc_context.traceparent()) as span:
            telemetry.describe_batch(span, request.posts)
            return await guarded(answer, grpc_context, inference_pb2.EnrichResponse())

    async def Embed(
        self, request: inference_pb2.EmbedRequest, grpc_context: RayServegRPCContext
    ) -> inference_pb2.EmbedResponse:
        async def answer() -> inference_pb2.EmbedResponse:
            self._admit(EMBED_METHOD, request, grpc_context)
            texts = embed_texts(request, self._settings)
            method = self._model.embed_queries if request.is_query else self._model.embed_passages
            pieces = await self._in_chunks(method.remote, texts)
            if self._encoder is None:
                self._encoder = await self._model.encoder.remote()
            return inference_pb2.EmbedResponse(
                embeddings=[inference_pb2.Embedding(values=v) for piece in pieces for v in piece],
                encoder=self._encoder,
            )

        with telemetry.server_span(EMBED_METHOD, grpc_context.traceparent()):
            return await guarded(answer, grpc_context, inference_pb2.EmbedResponse())

    # grpc.health.v1.Health/Check: the proxy routes it here by method name.
    async def Check(
        self, request: health_pb2.HealthCheckRequest, grpc_context: RayServegRPCContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in ("", SERVICE_NAME):
            grpc_context.set_code(grpc.StatusCode.NOT_FOUND)
            grpc_context.set_details(f"service: unknown service {request.service!r}")
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def _in_chunks(
        self, call: Callable[[Chunk], Awaitable[list[T]]], texts: list[str]
    ) -> list[list[T]]:
        size = self._settings.inference_max_batch_size
        trace = telemetry.traceparent()
        return list(await asyncio.gather(*(call(Chunk(chunk, trace)) for chunk in chunked(texts, size))))


async def guarded(
    answer: Callable[[], Awaitable[T]], grpc_context: RayServegRPCContext, empty: T
) -> T:
    """Runs answer; a failure becomes a clean status instead of Ray's error text on the wire."""
    try:
        return await answer()
    except MAPPED as exc:
        code, details = status_of(exc), str(exc)
    except BackPressureError:
        code, details = grpc.StatusCode.RESOURCE_EXHAUSTED, "inference is at capacity; retry later"
    except (ActorDiedError, ActorUnavailableError, DeploymentUnavailableError):
        log.warning("model deployment unavailable", exc_info=True)
        code, details = grpc.StatusCode.UNAVAILABLE, "the model is not available; retry later"
    except Exception:
        log.exception("inference failed")
        code, details = grpc.StatusCode.INTERNAL, "inference failed"
    grpc_context.set_code(code)
    grpc_context.set_details(details)
    return empty


def torch_threads(settings: Settings) -> int:
    return settings.torch_threads or os.cpu_count() or 1


def build_app(settings: Settings) -> serve.Application:
    """The application graph with replicas, GPUs and batching taken from settings."""
    model = serve.deployment(
        name="ModelServer",
        num_replicas=settings.inference_replicas,
        # Twice a batch, so that the next batch is queued while one runs.
        max_ongoing_requests=2 * settings.inference_max_batch_size,
        ray_actor_options={
            "num_cpus": 0,
            "num_gpus": settings.inference_num_gpus,
            # Ray pins OMP_NUM_THREADS to 1 in actors that reserve no CPU; torch would then use one core.
            "runtime_env": {"env_vars": {"OMP_NUM_THREADS": str(torch_threads(settings))}},
        },
        graceful_shutdown_wait_loop_s=SHUTDOWN_WAIT_LOOP_S,
        graceful_shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
    )(ModelServer)
    ingress = serve.deployment(
        name="InferenceIngress",
        max_ongoing_requests=INGRESS_MAX_ONGOING_REQUESTS,
        max_queued_requests=INGRESS_MAX_QUEUED_REQUESTS,
        ray_actor_options={"num_cpus": 0},
        graceful_shutdown_wait_loop_s=SHUTDOWN_WAIT_LOOP_S,
        graceful_shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
    )(InferenceIngress)
    return ingress.bind(model.bind(settings), settings)


# What `serve run inference.app:app` and the RayService's import path deploy, configured from the
# environment like every other process.
app = build_app(get_settings())
