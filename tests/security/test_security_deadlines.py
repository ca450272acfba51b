"""A caller's deadline follows its call downstream: SemanticSearch embeds its text through inference
with at most the time its caller has left, so a slow inference call is cut when the caller gives up.
Inference is a local stand-in speaking the real InferenceService contract, so its timing is set."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest

from civic.listening.v1 import inference_pb2, inference_pb2_grpc, search_pb2, search_pb2_grpc
from services.common.settings import Settings
from services.search.client import connect
from services.search.embedder import InferenceEmbedder
from services.search.indexing import Indexer
from services.search.server import build_server
from services.search.service import Searcher

pytestmark = pytest.mark.slow


@dataclass
class SlowInference(inference_pb2_grpc.InferenceServiceServicer):
    """Answers Embed after `delay_s`, recording the time each call had left and whether it was cut."""

    delay_s: float = 0.0
    time_left: list[float] = field(default_factory=list)
    cancelled: list[bool] = field(default_factory=list)

    def Embed(self, request: inference_pb2.EmbedRequest, context: grpc.ServicerContext) -> inference_pb2.EmbedResponse:
        self.time_left.append(context.time_remaining() or 0.0)
        end = time.monotonic() + self.delay_s
        while time.monotonic() < end:
            if not context.is_active():
                self.cancelled.append(True)
                return inference_pb2.EmbedResponse()
            time.sleep(0.02)
        self.cancelled.append(False)
        vector = [1.0] + [0.0] * 383
        return inference_pb2.EmbedResponse(embeddings=[inference_pb2.Embedding(values=vector)], encoder="stand-in")


@dataclass
class Setup:
    inference: SlowInference
    search: search_pb2_grpc.SearchServiceStub


@pytest.fixture
def setup(elasticsearch_url: str) -> Iterator[Setup]:
    inference = SlowInference()
    stand_in = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(inference, stand_in)
    port = stand_in.add_insecure_port("127.0.0.1:0")
    stand_in.start()
    settings = Settings(es_url=elasticsearch_url, inference_target=f"127.0.0.1:{port}", rpc_timeout_s=60)
    es = connect(settings)
    server = build_server(settings, Indexer(es, settings.index_prefix, refresh=True),
                          Searcher(es, settings.index_prefix, InferenceEmbedder(settings)), port=0).start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
        yield Setup(inference, search_pb2_grpc.SearchServiceStub(chan))
    server.stop(0)
    stand_in.stop(0)
    es.close()


def semantic(setup: Setup, **call: float) -> grpc.StatusCode:
    try:
        setup.search.SemanticSearch(search_pb2.SemanticSearchRequest(tenant="deadline-test", text="bus"), **call)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return, attr-defined]
    return grpc.StatusCode.OK


def test_the_inner_call_gets_the_time_the_caller_has_left(setup: Setup) -> None:
    assert semantic(setup, timeout=3.0) == grpc.StatusCode.OK
    assert semantic(setup) == grpc.StatusCode.OK  # no caller deadline: the service's own 60 s
    with_deadline, without = setup.inference.time_left
    assert 0 < with_deadline <= 3.1  # the wire rounds timeouts up a little
    assert 50 < without <= 61


def test_a_slow_inner_call_is_cut_when_the_caller_gives_up(setup: Setup) -> None:
    setup.inference.delay_s = 5.0
    started = time.monotonic()
    assert semantic(setup, timeout=1.0) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.0
    deadline = time.monotonic() + 3
    while not setup.inference.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert setup.inference.cancelled == [True]
