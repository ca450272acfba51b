"""Client channels spread calls over every replica a target names, and keep calling the live ones when
one goes away: what lets the forwarder talk to two alerting replicas without a proxy in between."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from services.common.grpc_server import channel
from services.common.settings import Settings

METHOD = "/civic.test.Replica/Name"


def replica(name: str) -> tuple[grpc.Server, int]:
    handler = grpc.method_handlers_generic_handler(
        "civic.test.Replica", {"Name": grpc.unary_unary_rpc_method_handler(lambda request, context: name.encode())}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture
def two_replicas() -> Iterator[tuple[dict[str, grpc.Server], str]]:
    (first, first_port), (second, second_port) = replica("a"), replica("b")
    yield {"a": first, "b": second}, f"ipv4:127.0.0.1:{first_port},127.0.0.1:{second_port}"
    first.stop(0)
    second.stop(0)


def names(call: grpc.UnaryUnaryMultiCallable, times: int) -> list[str]:
    return [call(b"", timeout=5, wait_for_ready=True).decode() for _ in range(times)]


def test_calls_spread_over_replicas_and_skip_a_stopped_one(two_replicas: tuple[dict[str, grpc.Server], str]) -> None:
    servers, target = two_replicas
    chan = channel(target, Settings())
    call = chan.unary_unary(METHOD)
    names(call, 1)
    deadline = time.monotonic() + 5
    seen: set[str] = set()
    while seen != {"a", "b"}:  # round_robin connects to both; until then calls go to the first ready
        assert time.monotonic() < deadline, f"calls only reached {seen}"
        seen.update(names(call, 4))

    servers["a"].stop(0).wait()
    deadline = time.monotonic() + 5
    while True:  # the stopped replica's connection is seen closed within moments
        try:
            if names(call, 1) == ["b"]:
                break
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() < deadline, "calls still reach the stopped replica"
    assert names(call, 20) == ["b"] * 20
    chan.close()
