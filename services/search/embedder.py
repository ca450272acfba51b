"""Query embeddings from the InferenceService, the only way search reaches the encoder."""

from __future__ import annotations

import grpc

from civic.listening.v1 import inference_pb2, inference_pb2_grpc
from services.common.errors import InvalidArgument, ResourceExhausted, Unavailable
from services.common.grpc_server import channel
from services.common.settings import Settings


class InferenceEmbedder:
    """Embeds one query text (is_query=true, as the encoder expects for the query side)."""

    def __init__(self, settings: Settings) -> None:
        self._target = settings.inference_target
        self._timeout = settings.rpc_timeout_s
        self._stub = inference_pb2_grpc.InferenceServiceStub(channel(settings.inference_target, settings))

    def __call__(self, text: str) -> tuple[list[float], str]:
        try:
            reply = self._stub.Embed(inference_pb2.EmbedRequest(texts=[text], is_query=True), timeout=self._timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument("text", f"not accepted by the encoder: {details}") from exc
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise ResourceExhausted(f"inference is overloaded: {details}") from exc
            raise Unavailable(f"inference at {self._target} failed ({code.name}): {details}") from exc
        return list(reply.embeddings[0].values), reply.encoder
