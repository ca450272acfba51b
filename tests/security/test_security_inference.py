"""The inference ingress checks bearer tokens itself (Ray Serve's gRPC proxy takes no interceptors):
the ingress class is driven directly, with the request context the proxy would hand it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from civic.listening.v1 import inference_pb2, post_pb2
from inference.app import InferenceIngress
from services.common.settings import Settings
from tests.fixtures.security import Credentials, bearer


class ProxyContext:
    """The part of RayServegRPCContext the ingress uses: metadata in, status out."""

    def __init__(self, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.metadata = list(metadata)
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.metadata

    def traceparent(self) -> str:
        return ""

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


def call(ingress: Any, method: str, request: Any, metadata: Sequence[tuple[str, str]] = ()) -> ProxyContext:
    context = ProxyContext(metadata)
    asyncio.run(getattr(ingress, method)(request, context))
    return context


@pytest.fixture
def ingress(credentials: Credentials) -> Any:
    # No model: every call here is settled before the model would be asked.
    return InferenceIngress(model=None, settings=Settings(**credentials.settings()))  # type: ignore[arg-type]


def test_the_ingress_refuses_calls_without_a_valid_token(ingress: Any) -> None:
    empty = inference_pb2.EnrichRequest()
    assert call(ingress, "Enrich", empty).code == grpc.StatusCode.UNAUTHENTICATED
    assert call(ingress, "Embed", inference_pb2.EmbedRequest(), bearer("civic_x_y")).code \
        == grpc.StatusCode.UNAUTHENTICATED


def test_the_ingress_checks_roles_and_tenants_then_validates(ingress: Any, credentials: Credentials) -> None:
    reader = bearer(credentials.api_key("city-a", "reader"))
    # Past authentication, the request's own checks answer.
    refused = call(ingress, "Enrich", inference_pb2.EnrichRequest(), reader)
    assert (refused.code, refused.details) == (grpc.StatusCode.INVALID_ARGUMENT, "posts: must not be empty")
    other = inference_pb2.EnrichRequest(posts=[post_pb2.Post(tenant="city-b", text="hello")])
    denied = call(ingress, "Enrich", other, reader)
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED and "posts[0].tenant" in denied.details
    assert call(ingress, "Embed", inference_pb2.EmbedRequest(), reader).code == grpc.StatusCode.INVALID_ARGUMENT


def test_without_auth_settings_the_ingress_does_not_ask_for_tokens() -> None:
    ingress = InferenceIngress(model=None, settings=Settings())  # type: ignore[arg-type]
    assert call(ingress, "Enrich", inference_pb2.EnrichRequest()).code == grpc.StatusCode.INVALID_ARGUMENT
