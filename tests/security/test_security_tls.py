"""TLS and mTLS of the gRPC servers and of the client helper, with a CA and certificates generated at
run time: plaintext and wrong-CA clients are refused, an mTLS client works, certificates rotate."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc
from services.alerting.server import build_server
from services.alerting.service import open_alerting
from services.common.grpc_server import GrpcServer, channel
from services.common.settings import Settings
from services.devstack.launch import free_port, is_healthy
from tests.fixtures.security import Credentials, Pki, make_pki


class Server:
    def __init__(self, settings: Settings) -> None:
        self.alerting = open_alerting(settings)
        self.server: GrpcServer = build_server(settings, self.alerting, port=0).start()
        self.target = f"127.0.0.1:{self.server.port}"

    def close(self) -> None:
        self.server.stop(0)
        self.alerting.close()


@pytest.fixture
def start(tmp_path: Path, pki: Pki) -> Iterator[Callable[..., Server]]:
    cert, key = pki.issue("server", server=True)
    started: list[Server] = []

    def factory(**overrides: Any) -> Server:
        base = {"alerting_state_path": tmp_path / "alerting.sqlite3", "alerts_index_prefix": "",
                "tls_cert_file": cert, "tls_key_file": key, "tls_ca_file": pki.ca_cert}
        server = Server(Settings(**{**base, **overrides}))
        started.append(server)
        return server

    yield factory
    for server in started:
        server.close()


def list_rules(target: str, client: Settings, **call: Any) -> list[alerting_pb2.Rule]:
    with channel(target, client) as chan:
        reply = alerting_pb2_grpc.AlertingServiceStub(chan).ListRules(
            alerting_pb2.ListRulesRequest(tenant="city-a"), timeout=5, **call)
        return list(reply.rules)


def refused(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[no-any-return, attr-defined]


def test_tls_server_refuses_plaintext_and_serves_clients_that_trust_its_ca(
    start: Callable[..., Server], pki: Pki, tmp_path: Path
) -> None:
    server = start()
    assert list_rules(server.target, Settings(tls_ca_file=pki.ca_cert)) == []
    assert refused(lambda: list_rules(server.target, Settings())) == grpc.StatusCode.UNAVAILABLE
    other = make_pki(tmp_path / "other", "some-other-ca")
    assert refused(lambda: list_rules(server.target, Settings(tls_ca_file=other.ca_cert))) \
        == grpc.StatusCode.UNAVAILABLE
    # A plaintext health probe cannot reach a TLS port either.
    assert not is_healthy(server.target)


def test_mtls_refuses_clients_without_a_certificate_of_the_ca(
    start: Callable[..., Server], pki: Pki, tmp_path: Path
) -> None:
    server = start(tls_require_client_cert=True)
    good_cert, good_key = pki.issue("ingestion-client", server=False)
    mtls = Settings(tls_ca_file=pki.ca_cert, tls_client_cert_file=good_cert, tls_client_key_file=good_key)
    assert list_rules(server.target, mtls) == []
    assert refused(lambda: list_rules(server.target, Settings(tls_ca_file=pki.ca_cert))) \
        == grpc.StatusCode.UNAVAILABLE
    rogue_cert, rogue_key = make_pki(tmp_path / "rogue", "rogue-ca").issue("intruder", server=False)
    rogue = Settings(tls_ca_file=pki.ca_cert, tls_client_cert_file=rogue_cert, tls_client_key_file=rogue_key)
    assert refused(lambda: list_rules(server.target, rogue)) == grpc.StatusCode.UNAVAILABLE
    assert refused(lambda: list_rules(server.target, Settings())) == grpc.StatusCode.UNAVAILABLE


def test_mtls_and_a_bearer_token_together(
    start: Callable[..., Server], pki: Pki, credentials: Credentials
) -> None:
    server = start(tls_require_client_cert=True, **credentials.settings())
    cert, key = pki.issue("cli", server=False)
    client: dict[str, Any] = {"tls_ca_file": pki.ca_cert, "tls_client_cert_file": cert, "tls_client_key_file": key}
    assert refused(lambda: list_rules(server.target, Settings(**client))) == grpc.StatusCode.UNAUTHENTICATED
    token = credentials.api_key("city-a", "reader")
    assert list_rules(server.target, Settings(auth_token=token, **client)) == []


def test_a_rotated_certificate_is_served_to_new_connections_without_a_restart(
    start: Callable[..., Server], pki: Pki, tmp_path: Path
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    first_cert, first_key = pki.issue("rotating", server=True)
    shutil.copy(first_cert, live / "tls.crt")
    shutil.copy(first_key, live / "tls.key")
    server = start(tls_cert_file=live / "tls.crt", tls_key_file=live / "tls.key")
    assert list_rules(server.target, Settings(tls_ca_file=pki.ca_cert)) == []

    renewed = make_pki(tmp_path / "renewed", "renewed-ca")
    new_cert, new_key = renewed.issue("rotating", server=True)
    shutil.copy(new_key, live / "tls.key")
    shutil.copy(new_cert, live / "tls.crt")
    assert list_rules(server.target, Settings(tls_ca_file=renewed.ca_cert)) == []
    assert refused(lambda: list_rules(server.target, Settings(tls_ca_file=pki.ca_cert))) \
        == grpc.StatusCode.UNAVAILABLE


def test_a_plaintext_health_port_serves_probes_beside_a_tls_port(start: Callable[..., Server]) -> None:
    health_port = free_port()
    server = start(health_port=health_port)
    assert is_healthy(f"127.0.0.1:{health_port}")
    assert not is_healthy(server.target)
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as chan:
        stub = alerting_pb2_grpc.AlertingServiceStub(chan)
        assert refused(lambda: stub.ListRules(alerting_pb2.ListRulesRequest(tenant="city-a"), timeout=5)) \
            == grpc.StatusCode.UNIMPLEMENTED


def test_clients_can_expect_the_service_name_when_reaching_it_by_another_address(
    start: Callable[..., Server], pki: Pki, tmp_path: Path
) -> None:
    """Through `kubectl port-forward` the target is 127.0.0.1 but the certificate names the Service."""
    cert, key = pki.issue("search-svc", server=True, hosts=("civic-search.civic.svc",))
    server = start(tls_cert_file=cert, tls_key_file=key)
    localhost = f"localhost:{server.server.port}"  # the certificate does not name localhost
    assert refused(lambda: list_rules(localhost, Settings(tls_ca_file=pki.ca_cert))) == grpc.StatusCode.UNAVAILABLE
    named = Settings(tls_ca_file=pki.ca_cert, tls_server_name="civic-search.civic.svc")
    assert list_rules(localhost, named) == []
