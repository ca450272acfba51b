"""The security layer over real gRPC servers: bearer tokens (API keys and JWTs), roles, the tenant
taken from the credential, rate limits with retry info, health and reflection, the client helper."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc, post_pb2
from services.alerting import silences
from services.alerting.server import SERVICE_NAME, build_server
from services.alerting.service import open_alerting
from services.common.auth import METHOD_ROLES, Authenticator, Unauthenticated, list_keys, revoke_key
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.devstack.launch import is_healthy
from tests.fixtures.security import Credentials, bearer

MONDAY = datetime(2026, 11, 9, 9, tzinfo=UTC)


class Server:
    """A started alerting server with authentication on, and an unauthenticated stub to call it."""

    def __init__(self, settings: Settings) -> None:
        self.alerting = open_alerting(settings)
        self.server = build_server(settings, self.alerting, port=0).start()
        self.target = f"127.0.0.1:{self.server.port}"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = alerting_pb2_grpc.AlertingServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0)
        self.alerting.close()


@pytest.fixture
def start(tmp_path: Path, credentials: Credentials) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def factory(**overrides: Any) -> Server:
        base = {"alerting_state_path": tmp_path / "alerting.sqlite3", "alerts_index_prefix": "",
                **credentials.settings()}
        server = Server(Settings(**{**base, **overrides}))
        started.append(server)
        return server

    yield factory
    for server in started:
        server.close()


@pytest.fixture
def server(start: Callable[..., Server]) -> Server:
    return start()


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[no-any-return, attr-defined]


def rule(rule_id: str, tenant: str = "") -> alerting_pb2.Rule:
    return alerting_pb2.Rule(id=rule_id, tenant=tenant, name=rule_id, kind=alerting_pb2.RULE_KIND_QUERY_MATCH,
                             query="bus", threshold=1, window_seconds=3600)


# --- authentication ---------------------------------------------------------------------------------


def test_missing_malformed_and_unknown_tokens_are_unauthenticated(server: Server, credentials: Credentials) -> None:
    request = alerting_pb2.ListRulesRequest()
    assert code_of(lambda: server.stub.ListRules(request, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    for header in ("Basic dXNlcjpwdw==", "Bearer", "Bearer civic_abc_not-a-key", "Bearer not.a.jwt"):
        metadata = [("authorization", header)]
        assert code_of(functools.partial(server.stub.ListRules, request, metadata=metadata, timeout=5)) \
            == grpc.StatusCode.UNAUTHENTICATED, header
    key = credentials.api_key("city-a", "reader")
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert code_of(lambda: server.stub.ListRules(request, metadata=bearer(tampered), timeout=5)) \
        == grpc.StatusCode.UNAUTHENTICATED
    assert server.stub.ListRules(request, metadata=bearer(key), timeout=5).rules == []


def test_a_revoked_key_stops_working_without_a_restart(server: Server, credentials: Credentials) -> None:
    key = credentials.api_key("city-a", "reader")
    server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=bearer(key), timeout=5)
    (record,) = list_keys(credentials.keys_file)
    assert record.tenant == "city-a" and key.split("_")[2] not in credentials.keys_file.read_text()
    assert revoke_key(credentials.keys_file, record.id)
    assert code_of(lambda: server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=bearer(key), timeout=5)) \
        == grpc.StatusCode.UNAUTHENTICATED


def test_jwts_are_checked_for_signature_expiry_audience_issuer_and_claims(
    server: Server, credentials: Credentials
) -> None:
    def call(token: str) -> grpc.StatusCode:
        try:
            server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=bearer(token), timeout=5)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return, attr-defined]
        return grpc.StatusCode.OK

    assert call(credentials.jwt("city-a", ["reader"])) == grpc.StatusCode.OK
    unauthenticated = {
        "expired": credentials.jwt("city-a", ["reader"], lifetime_s=-120),
        "audience": credentials.jwt("city-a", ["reader"], aud="another-product"),
        "issuer": credentials.jwt("city-a", ["reader"], iss="https://evil.example"),
        "no tenant": credentials.jwt(None, ["reader"]),
        "unknown role": credentials.jwt("city-a", ["superuser"]),
        "bad tenant": credentials.jwt("City A!", ["reader"]),
        "unknown kid": jwt.encode({"sub": "x", "aud": "civic-listening", "exp": int(time.time()) + 60,
                                   "tenant": "city-a", "roles": ["reader"]},
                                  credentials.signing_key, algorithm="RS256", headers={"kid": "other"}),
        # The classic confusion: an HMAC token keyed with the public key must never verify.
        "hs256": jwt.encode({"sub": "x", "aud": "civic-listening", "exp": int(time.time()) + 60,
                             "tenant": "city-a", "roles": ["admin"]}, "secret-guess-" * 4, algorithm="HS256",
                            headers={"kid": credentials.kid}),
    }
    for reason, token in unauthenticated.items():
        assert call(token) == grpc.StatusCode.UNAUTHENTICATED, reason


def test_the_authenticator_names_what_is_wrong(credentials: Credentials) -> None:
    authenticator = Authenticator(Settings(**credentials.settings()))
    with pytest.raises(Unauthenticated, match="missing authorization"):
        authenticator.authenticate([])
    with pytest.raises(Unauthenticated, match="expired"):
        authenticator.authenticate(bearer(credentials.jwt("city-a", ["reader"], lifetime_s=-120)))
    principal = authenticator.authenticate(bearer(credentials.jwt("city-a", ["analyst"])))
    assert (principal.tenant, principal.subject, principal.granted()) == (
        "city-a", "jwt:user-of-city-a", frozenset({"analyst", "reader"}))


def test_a_broken_keys_file_stops_the_start_and_a_broken_update_keeps_the_old_keys(
    credentials: Credentials, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError):
        Authenticator(Settings(auth_keys_file=broken))
    with pytest.raises(OSError):
        Authenticator(Settings(auth_keys_file=tmp_path / "missing.json"))
    key = credentials.api_key("city-a", "reader")
    authenticator = Authenticator(Settings(**credentials.settings()))
    credentials.keys_file.write_text('{"keys": [')  # an operator's bad edit
    assert authenticator.authenticate(bearer(key)).tenant == "city-a"


# --- roles ------------------------------------------------------------------------------------------------


def test_every_rpc_of_every_service_has_a_role() -> None:
    from civic.listening.v1 import inference_pb2, ingestion_pb2, search_pb2, topics_pb2

    methods = {
        f"/{service.full_name}/{method.name}"
        for module in (alerting_pb2, inference_pb2, ingestion_pb2, search_pb2, topics_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == set(METHOD_ROLES)


def test_roles_decide_what_a_caller_may_do(server: Server, credentials: Credentials) -> None:
    reader = bearer(credentials.api_key("city-a", "reader"))
    analyst = bearer(credentials.api_key("city-a", "analyst"))
    admin = bearer(credentials.jwt("city-a", ["admin"]))
    ingest = bearer(credentials.api_key("city-a", "ingest"))
    put = alerting_pb2.PutRuleRequest(rule=rule("buses"))
    assert code_of(lambda: server.stub.PutRule(put, metadata=reader, timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=ingest, timeout=5)) \
        == grpc.StatusCode.PERMISSION_DENIED
    assert server.stub.PutRule(put, metadata=analyst, timeout=5).rule.tenant == "city-a"
    assert code_of(lambda: server.stub.ListWebhooks(alerting_pb2.ListWebhooksRequest(), metadata=analyst,
                                                    timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
    assert list(server.stub.ListWebhooks(alerting_pb2.ListWebhooksRequest(), metadata=admin, timeout=5).webhooks) == []
    # Only the services' own credential may feed posts to rules.
    evaluate = alerting_pb2.EvaluatePostsRequest(posts=[post_pb2.EnrichedPost(post=post_pb2.Post(id="1"))])
    assert code_of(lambda: server.stub.EvaluatePosts(evaluate, metadata=admin, timeout=5)) \
        == grpc.StatusCode.PERMISSION_DENIED


# --- the tenant comes from the credential -------------------------------------------------------------------


def test_the_tenant_comes_from_the_credential(server: Server, credentials: Credentials) -> None:
    city_a = bearer(credentials.api_key("city-a", "analyst"))
    city_b = bearer(credentials.api_key("city-b", "analyst"))
    server.stub.PutRule(alerting_pb2.PutRuleRequest(rule=rule("a-rule")), metadata=city_a, timeout=5)
    server.stub.PutRule(alerting_pb2.PutRuleRequest(rule=rule("b-rule", "city-b")), metadata=city_b, timeout=5)
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.PutRule(alerting_pb2.PutRuleRequest(rule=rule("sneaky", "city-b")), metadata=city_a, timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "rule.tenant" in caught.value.details()  # type: ignore[attr-defined]
    assert code_of(lambda: server.stub.ListRules(alerting_pb2.ListRulesRequest(tenant="city-b"), metadata=city_a,
                                                 timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
    listed = server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=city_a, timeout=5).rules
    assert [(r.id, r.tenant) for r in listed] == [("a-rule", "city-a")]
    assert code_of(lambda: server.stub.DeleteRule(alerting_pb2.DeleteRuleRequest(id="b-rule"), metadata=city_a,
                                                  timeout=5)) == grpc.StatusCode.NOT_FOUND
    assert [r.id for r in server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=city_b, timeout=5).rules] \
        == ["b-rule"]


def test_the_service_role_acts_for_every_tenant_and_tenant_keys_see_only_theirs(
    server: Server, credentials: Credentials
) -> None:
    service = bearer(credentials.api_key("", "service"))
    for tenant in ("city-a", "city-b"):
        server.stub.PutRule(alerting_pb2.PutRuleRequest(rule=rule("buses", tenant)), metadata=service, timeout=5)
    posts = []
    for tenant in ("city-a", "city-b"):
        post = post_pb2.Post(id=f"{tenant}-1", tenant=tenant, channel="mastodon", text="the bus is late")
        post.created_at.FromDatetime(MONDAY)
        posts.append(post_pb2.EnrichedPost(post=post))
    fired = server.stub.EvaluatePosts(alerting_pb2.EvaluatePostsRequest(posts=posts), metadata=service, timeout=10)
    assert sorted(a.tenant for a in fired.fired) == ["city-a", "city-b"]
    city_a = bearer(credentials.jwt("city-a", ["reader"]))
    alerts = server.stub.ListAlerts(alerting_pb2.ListAlertsRequest(), metadata=city_a, timeout=5).alerts
    assert [a.tenant for a in alerts] == ["city-a"]
    # A tenant's credential cannot smuggle posts of another tenant into a batch either.
    ingest_a = bearer(credentials.api_key("city-a", "admin"))
    assert code_of(lambda: server.stub.ListAlerts(alerting_pb2.ListAlertsRequest(tenant="city-b"),
                                                  metadata=ingest_a, timeout=5)) == grpc.StatusCode.PERMISSION_DENIED


def test_watch_alerts_streams_are_scoped_too(server: Server, credentials: Credentials) -> None:
    city_a = bearer(credentials.api_key("city-a", "reader"))
    stream = server.stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(tenant="city-b"), metadata=city_a, timeout=5)
    assert code_of(lambda: next(stream)) == grpc.StatusCode.PERMISSION_DENIED
    unauthenticated = server.stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(), timeout=5)
    assert code_of(lambda: next(unauthenticated)) == grpc.StatusCode.UNAUTHENTICATED
    # The caller's own stream opens (and is cut by its deadline, having had nothing to say).
    own = server.stub.WatchAlerts(alerting_pb2.WatchAlertsRequest(), metadata=city_a, timeout=1)
    assert code_of(lambda: next(own)) == grpc.StatusCode.DEADLINE_EXCEEDED


def test_silence_patterns_cannot_stall_alerting(server: Server, credentials: Credentials) -> None:
    analyst = bearer(credentials.api_key("city-a", "analyst"))
    evil = alerting_pb2.Silence(matchers=[alerting_pb2.Matcher(
        name="team", value="(a+)+$", operator=alerting_pb2.MATCH_OPERATOR_REGEX)], created_by="mallory")
    evil.ends_at.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    stored = server.stub.CreateSilence(alerting_pb2.CreateSilenceRequest(silence=evil), metadata=analyst,
                                       timeout=5).silence
    started = time.monotonic()  # a backtracking engine would take ages on this label
    assert not silences.matches(stored, {"team": "a" * 5_000 + "!"})
    assert time.monotonic() - started < 0.5
    backreference = alerting_pb2.Silence()
    backreference.CopyFrom(evil)
    backreference.matchers[0].value = "(a)\\1"
    with pytest.raises(grpc.RpcError) as refused:
        server.stub.CreateSilence(alerting_pb2.CreateSilenceRequest(silence=backreference), metadata=analyst,
                                  timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "silence.matchers[0].value" in refused.value.details()  # type: ignore[attr-defined]


# --- rate limits, health, reflection, client helper ---------------------------------------------------------


def test_a_tenant_over_its_rate_gets_resource_exhausted_with_retry_info(
    start: Callable[..., Server], credentials: Credentials
) -> None:
    server = start(rate_limit_per_s=0.5, rate_limit_burst=3)
    city_a = bearer(credentials.api_key("city-a", "reader"))
    city_b = bearer(credentials.api_key("city-b", "reader"))
    for _ in range(3):
        server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=city_a, timeout=5)
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=city_a, timeout=5)
    error = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert 1.0 <= info.retry_delay.ToTimedelta().total_seconds() <= 2.0
    trailers = dict(error.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["retry-after"] == "2"
    # Another tenant has its own bucket.
    server.stub.ListRules(alerting_pb2.ListRulesRequest(), metadata=city_b, timeout=5)


def test_health_stays_open_and_reflection_can_be_turned_off(start: Callable[..., Server]) -> None:
    with_reflection = start()
    assert is_healthy(with_reflection.target, SERVICE_NAME)
    without = start(reflection=False)
    assert is_healthy(without.target, SERVICE_NAME)

    def list_services(target: str) -> list[str]:
        with grpc.insecure_channel(target) as chan:
            replies = reflection_pb2_grpc.ServerReflectionStub(chan).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            return [s.name for reply in replies for s in reply.list_services_response.service]

    assert SERVICE_NAME in list_services(with_reflection.target)
    assert code_of(lambda: list_services(without.target)) == grpc.StatusCode.UNIMPLEMENTED


def test_the_client_helper_sends_the_configured_token(
    server: Server, credentials: Credentials, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(credentials.api_key("city-a", "analyst") + "\n")
    for client in (Settings(auth_token=credentials.jwt("city-a", ["analyst"])), Settings(auth_token_file=token_file)):
        with channel(server.target, client) as chan:
            stub = alerting_pb2_grpc.AlertingServiceStub(chan)
            assert stub.PutRule(alerting_pb2.PutRuleRequest(rule=rule("r1")), timeout=5).rule.tenant == "city-a"
    # A call's own token (a gateway forwarding its viewer's) wins over the configured one.
    with channel(server.target, Settings(auth_token=credentials.api_key("city-a", "admin"))) as chan:
        viewer = bearer(credentials.api_key("city-a", "reader"))
        put = alerting_pb2.PutRuleRequest(rule=rule("r2"))
        assert code_of(lambda: alerting_pb2_grpc.AlertingServiceStub(chan).PutRule(put, metadata=viewer, timeout=5)) \
            == grpc.StatusCode.PERMISSION_DENIED
    with channel(server.target, Settings()) as chan:
        assert code_of(lambda: alerting_pb2_grpc.AlertingServiceStub(chan).ListRules(
            alerting_pb2.ListRulesRequest(), timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
