"""The InferenceService as search uses it: query and passage embeddings, and enrichment of stored posts.

The only way search reaches the encoder. Topic descriptions and examples are embedded as passages,
like the posts they are compared with; stored posts are enriched again when the models change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import grpc
import numpy as np

from civic.listening.v1 import inference_pb2, inference_pb2_grpc, post_pb2
from services.common.errors import InvalidArgument, ResourceExhausted, Unavailable
from services.common.grpc_server import channel
from services.common.settings import Settings

T = TypeVar("T")


class InferenceEmbedder:
    """Calling it embeds one query text (is_query=true, as the encoder expects for the query side)."""

    def __init__(self, settings: Settings) -> None:
        self._target = settings.inference_target
        self._timeout = settings.rpc_timeout_s
        self._chunk = max(1, settings.inference_max_request_posts)
        self._stub = inference_pb2_grpc.InferenceServiceStub(channel(settings.inference_target, settings))

    def __call__(self, text: str) -> tuple[list[float], str]:
        reply = self._call("text", lambda: self._stub.Embed(
            inference_pb2.EmbedRequest(texts=[text], is_query=True), timeout=self._timeout))
        return list(reply.embeddings[0].values), reply.encoder

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Passage embeddings, one row per text (requests of at most inference_max_request_posts)."""
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._chunk):
            request = inference_pb2.EmbedRequest(texts=texts[start:start + self._chunk], is_query=False)
            reply = self._call("texts", partial(self._stub.Embed, request, timeout=self._timeout))
            rows += [list(embedding.values) for embedding in reply.embeddings]
        return np.array(rows, dtype=np.float32).reshape(len(texts), -1)

    def enrich(self, posts: Sequence[post_pb2.Post]) -> list[post_pb2.Enrichment]:
        enrichments: list[post_pb2.Enrichment] = []
        for start in range(0, len(posts), self._chunk):
            request = inference_pb2.EnrichRequest(posts=posts[start:start + self._chunk])
            reply = self._call("posts", partial(self._stub.Enrich, request, timeout=self._timeout))
            enrichments += list(reply.enrichments)
        return enrichments

    def _call(self, field: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(field, f"not accepted by the encoder: {details}") from exc
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise ResourceExhausted(f"inference is overloaded: {details}") from exc
            raise Unavailable(f"inference at {self._target} failed ({code.name}): {details}") from exc
