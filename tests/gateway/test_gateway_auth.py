"""The gateway forwards each viewer's bearer token, and the services decide with it: an alerting
service with authentication on, reached only through a gateway that holds no credential."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc
from services.common.auth import create_key
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from tests.fixtures.stack_dashboard import start_gateway

pytestmark = pytest.mark.slow

TRANSIT, PASSPORTS = "city-transit", "passport-office"


@dataclass(frozen=True)
class Secured:
    url: str
    alerting_target: str
    analyst: str  # city-transit, analyst
    reader: str  # passport-office, reader
    service: str  # any tenant


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    logs = tmp_path_factory.mktemp("gateway-auth")
    keys = logs / "keys.json"
    analyst, _ = create_key(keys, TRANSIT, ["analyst"])
    reader, _ = create_key(keys, PASSPORTS, ["reader"])
    service, _ = create_key(keys, TRANSIT, ["service"])
    port = free_port()
    env = {
        "CIVIC_ALERTING_PORT": str(port), "CIVIC_ALERTING_TARGET": f"127.0.0.1:{port}",
        "CIVIC_ALERTING_STATE_PATH": str(logs / "alerting.sqlite3"), "CIVIC_ALERTS_INDEX_PREFIX": "",
        "CIVIC_AUTH_KEYS_FILE": str(keys), "CIVIC_AUDIT_INDEX": "",
        "CIVIC_SEARCH_TARGET": f"127.0.0.1:{free_port()}", "CIVIC_INGESTION_TARGET": f"127.0.0.1:{free_port()}",
    }
    alerting = spawn(["services.alerting"], env, logs / "alerting.log")
    gateway = None
    try:
        wait_healthy(env["CIVIC_ALERTING_TARGET"], 60, process=alerting)
        gateway, url = start_gateway({k: v for k, v in env.items() if k != "CIVIC_AUTH_KEYS_FILE"}, logs)
        yield Secured(url, env["CIVIC_ALERTING_TARGET"], analyst, reader, service)
    finally:
        for process in (gateway, alerting):
            if process is not None:
                stop_pid(process.pid)


def call(
    secured: Secured, method: str, path: str, token: str = "", tenant: str = "", **kwargs: object
) -> httpx.Response:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if tenant:
        headers["X-Civic-Tenant"] = tenant
    return httpx.request(method, secured.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def silences_of(secured: Secured, tenant: str) -> list[str]:
    with grpc.insecure_channel(secured.alerting_target) as channel:
        reply = alerting_pb2_grpc.AlertingServiceStub(channel).ListSilences(
            alerting_pb2.ListSilencesRequest(tenant=tenant),
            metadata=(("authorization", f"Bearer {secured.service}"),))
    return [s.comment for s in reply.silences]


def test_the_agency_comes_from_the_viewers_token(secured: Secured) -> None:
    body = {"matchers": [{"name": "rule", "value": "city-transit-line-3"}], "minutes": 60, "by": "ana",
            "comment": "made through the dashboard"}
    created = call(secured, "POST", "/api/silences", token=secured.analyst, json=body)
    assert created.status_code == 201, created.text
    assert silences_of(secured, TRANSIT) == ["made through the dashboard"]
    assert silences_of(secured, PASSPORTS) == []
    mine = call(secured, "GET", "/api/silences", token=secured.analyst).json()["silences"]
    assert [s["comment"] for s in mine] == ["made through the dashboard"]
    theirs = call(secured, "GET", "/api/silences", token=secured.reader)
    assert theirs.status_code == 200 and theirs.json()["silences"] == []


def test_the_services_refusals_reach_the_viewer_in_words(secured: Secured) -> None:
    no_token = call(secured, "GET", "/api/alerts", tenant=TRANSIT)
    assert no_token.status_code == 401 and "Your access token was not accepted" in no_token.json()["error"]
    forged = call(secured, "GET", "/api/alerts", token="civic_0000_not-a-key")
    assert forged.status_code == 401
    other_agency = call(secured, "GET", "/api/alerts", token=secured.analyst, tenant=PASSPORTS)
    assert other_agency.status_code == 403
    assert "another tenant" in other_agency.json()["error"]
    reader_acts = call(secured, "POST", "/api/silences", token=secured.reader,
                       json={"matchers": [{"name": "rule", "value": "x"}], "minutes": 5, "by": "r"})
    assert reader_acts.status_code == 403 and "analyst" in reader_acts.json()["error"]


def test_live_events_carry_the_token_too(secured: Secured) -> None:
    with httpx.stream("GET", f"{secured.url}/api/alerts/events", timeout=30,
                      headers={"X-Civic-Tenant": TRANSIT}) as response:
        text = "".join(line + "\n" for line, _ in zip(response.iter_lines(), range(6), strict=False))
    assert "event: problem" in text and '"status":401' in text
    with httpx.stream("GET", f"{secured.url}/api/alerts/events", timeout=5,
                      headers={"Authorization": f"Bearer {secured.analyst}"}) as response:
        first = next(line for line in response.iter_lines() if line)
    assert first == "retry: 3000"

