"""The dashboard's JSON API against real services loaded with example posts: figures that agree with
the services' own answers, one agency per viewer, errors in words, live alert events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc, post_pb2, search_pb2, search_pb2_grpc
from services.devstack.launch import free_port, stop_pid
from tests.fixtures.pipeline import make_post
from tests.fixtures.stack_dashboard import DashboardStack, ingest_and_wait, insert_dead_letter, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TRANSIT, PASSPORTS = "city-transit", "passport-office"


def get(stack: DashboardStack, path: str, tenant: str | None = TRANSIT, **headers: str) -> httpx.Response:
    if tenant:
        headers["X-Civic-Tenant"] = tenant
    return httpx.get(stack.url + path, headers=headers, timeout=60)


def post(stack: DashboardStack, path: str, body: Any, tenant: str = TRANSIT) -> httpx.Response:
    return httpx.post(stack.url + path, json=body, headers={"X-Civic-Tenant": tenant}, timeout=60)


@pytest.fixture
def search(dashboard_stack: DashboardStack) -> Iterator[search_pb2_grpc.SearchServiceStub]:
    with grpc.insecure_channel(dashboard_stack.search_target) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


@pytest.fixture
def alerting(dashboard_stack: DashboardStack) -> Iterator[alerting_pb2_grpc.AlertingServiceStub]:
    with grpc.insecure_channel(dashboard_stack.alerting_target) as channel:
        yield alerting_pb2_grpc.AlertingServiceStub(channel)


def test_overview_figures_agree_with_the_search_service(
    dashboard_stack: DashboardStack, search: search_pb2_grpc.SearchServiceStub
) -> None:
    reply = get(dashboard_stack, "/api/overview?period=1d")
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    period = doc["period"]
    assert period["to"] == "2026-11-13T15:00:00Z"  # the hour after the newest post of the slice
    assert (period["from"], period["previous_from"], period["interval"]) == (
        "2026-11-12T15:00:00Z", "2026-11-11T15:00:00Z", "hour")

    window = search_pb2.SearchFilters()
    window.created_from.FromJsonString(period["from"])
    window.created_to.FromJsonString(period["to"])
    sentiments = search.Aggregate(search_pb2.AggregateRequest(
        tenant=TRANSIT, filters=window, dimension=search_pb2.AGGREGATE_DIMENSION_SENTIMENT))
    counts = {b.key: b.count for b in sentiments.buckets}
    totals = doc["totals"]
    assert totals["posts"] == sentiments.total > 100
    assert sum(b["count"] for b in doc["volume"]) == totals["posts"]
    assert len(doc["volume"]) == 24
    expected_cx = 50 + 50 * (counts.get("positive", 0) - counts.get("negative", 0)) / sentiments.total
    assert totals["cx"] == pytest.approx(expected_cx, abs=0.05)
    assert totals["negative_share"] == pytest.approx(counts.get("negative", 0) / sentiments.total)
    assert 0 < totals["previous_posts"] < totals["posts"]  # the slice starts at 12:00 the day before

    assert sum(c["count"] for c in doc["channels"]) == totals["posts"]
    assert {c["key"] for c in doc["channels"]} <= {"mastodon", "reddit", "rss", "open311", "webhook"}
    assert doc["emerging_terms"], "the outage hour should bring terms that stand out"
    assert doc["topics"]
    for topic in doc["topics"]:
        assert topic["cx"] is None or 0 <= topic["cx"] <= 100
        assert sum(point["count"] for point in topic["series"]) == topic["posts"]
    assert doc["tone"]["has_tone"] in (True, False)


def test_search_with_filters_highlights_and_links(
    dashboard_stack: DashboardStack, search: search_pb2_grpc.SearchServiceStub
) -> None:
    reply = get(dashboard_stack, '/api/search?q="line 3"&sentiments=negative&page_size=5&sort=newest')
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    negative = search_pb2.SearchFilters(sentiments=[post_pb2.SENTIMENT_LABEL_NEGATIVE])
    count = search.Count(search_pb2.CountRequest(tenant=TRANSIT, query='"line 3"', filters=negative))
    assert doc["total"] == count.count > 5
    assert len(doc["hits"]) == 5 and doc["next_page_token"]
    times = [hit["created_at"] for hit in doc["hits"]]
    assert times == sorted(times, reverse=True)
    for hit in doc["hits"]:
        assert hit["sentiment"] == "negative"
        assert any("<em>" in fragment for fragment in hit["highlights"])
        assert hit["url"].startswith("https://example.org/synthetic/")
    following = get(dashboard_stack, f'/api/search?q="line 3"&sentiments=negative&page_size=5&sort=newest'
                                     f'&page_token={doc["next_page_token"]}').json()
    assert not {h["id"] for h in following["hits"]} & {h["id"] for h in doc["hits"]}

    semantic = get(dashboard_stack, "/api/search?q=the metro is broken down&semantic=1&page_size=5").json()
    assert semantic["semantic"] and len(semantic["hits"]) == 5
    assert all(0 <= hit["score"] <= 1 for hit in semantic["hits"])


def test_a_viewer_sees_only_their_agency(
    dashboard_stack: DashboardStack, alerting: alerting_pb2_grpc.AlertingServiceStub
) -> None:
    transit = get(dashboard_stack, '/api/search?q="line 3"').json()
    passports = get(dashboard_stack, '/api/search?q="line 3"', tenant=PASSPORTS).json()
    assert transit["total"] > 0 and passports["total"] == 0

    transit_alerts = get(dashboard_stack, "/api/alerts").json()["alerts"]
    passport_alerts = get(dashboard_stack, "/api/alerts", tenant=PASSPORTS).json()["alerts"]
    assert transit_alerts
    assert not {a["id"] for a in transit_alerts} & {a["id"] for a in passport_alerts}
    target = transit_alerts[-1]["id"]
    refused = post(dashboard_stack, f"/api/alerts/{target}/acknowledge", {"by": "intruder"}, tenant=PASSPORTS)
    assert refused.status_code == 404, refused.text
    assert target in refused.json()["error"]
    stored = alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=TRANSIT, limit=500)).alerts
    assert [a.acknowledged_by for a in stored if a.id == target] == [""]

    a_post = transit["hits"][0]
    found = get(dashboard_stack, f"/api/posts/{a_post['channel']}/{a_post['id']}")
    assert found.status_code == 200 and found.json()["id"] == a_post["id"]
    hidden = get(dashboard_stack, f"/api/posts/{a_post['channel']}/{a_post['id']}", tenant=PASSPORTS)
    assert hidden.status_code == 404


@pytest.mark.parametrize(("path", "tenant", "headers", "status", "words"), [
    ("/api/search?q=x", None, {}, 401, "Choose an agency"),
    ("/api/search?q=x", "City Transit", {}, 401, "not an agency name"),
    ("/api/search?q=x", None, {"Authorization": "Basic abc"}, 401, "Bearer"),
    ('/api/search?q="line 3" AND (', TRANSIT, {}, 400, "query"),
    ("/api/search?sentiments=angry", TRANSIT, {}, 400, "sentiments: 'angry' is not one of"),
    ("/api/search?from=yesterday", TRANSIT, {}, 400, "from: 'yesterday' is not a date"),
    ("/api/overview?period=2y", TRANSIT, {}, 400, "period"),
    ("/api/alerts?state=open", TRANSIT, {}, 400, "state"),
    ("/api/alerts/no-such-alert/acknowledge", TRANSIT, {}, 405, "GET /api/alerts/no-such-alert/acknowledge"),
    ("/api/nothing-here", TRANSIT, {}, 404, "Not Found"),
])
def test_errors_come_back_in_words(
    dashboard_stack: DashboardStack, path: str, tenant: str | None, headers: dict[str, str], status: int, words: str
) -> None:
    reply = get(dashboard_stack, path, tenant=tenant, **headers)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]


def test_alert_actions_validate_and_reach_the_alerting_service(
    dashboard_stack: DashboardStack, alerting: alerting_pb2_grpc.AlertingServiceStub
) -> None:
    alerts = get(dashboard_stack, "/api/alerts?state=firing").json()["alerts"]
    assert alerts and all(a["state"] == "firing" for a in alerts)
    assert [a["priority"] for a in alerts] == sorted((a["priority"] for a in alerts), reverse=True)
    for alert in alerts:
        assert sum(f["points"] for f in alert["priority_factors"]) == pytest.approx(alert["priority"], abs=0.1)
    target = alerts[0]["id"]
    missing_by = post(dashboard_stack, f"/api/alerts/{target}/assign", {"assignee": "metro team"})
    assert missing_by.status_code == 400 and missing_by.json()["error"] == "by: is required"
    not_json = httpx.post(f"{dashboard_stack.url}/api/alerts/{target}/resolve", content=b"{by",
                          headers={"X-Civic-Tenant": TRANSIT})
    assert not_json.status_code == 400 and "body: not JSON" in not_json.json()["error"]
    assigned = post(dashboard_stack, f"/api/alerts/{target}/assign", {"assignee": "metro team", "by": "api-test"})
    assert assigned.status_code == 200, assigned.text
    assert (assigned.json()["assignee"], assigned.json()["assigned_by"]) == ("metro team", "api-test")
    stored = alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=TRANSIT, limit=500)).alerts
    assert [a.assignee for a in stored if a.id == target] == ["metro team"]

    matchers = [{"name": "rule", "value": alerts[0]["rule_id"]}]
    silence = post(dashboard_stack, "/api/silences", {"matchers": matchers, "minutes": 30, "by": "api-test"})
    assert silence.status_code == 201, silence.text
    listed = get(dashboard_stack, "/api/silences").json()["silences"]
    assert silence.json()["id"] in {s["id"] for s in listed}
    assert post(dashboard_stack, "/api/silences", {"matchers": [], "minutes": 30, "by": "x"}).status_code == 400
    expired = post(dashboard_stack, f"/api/silences/{silence.json()['id']}/expire", {})
    assert expired.status_code == 200
    assert silence.json()["id"] not in {s["id"] for s in get(dashboard_stack, "/api/silences").json()["silences"]}


def read_events(lines: Iterator[str], wanted: int) -> list[dict[str, Any]]:
    """The next `wanted` alert events of a server-sent event stream."""
    events, block = [], []
    for line in lines:
        if line:
            block.append(line)
            continue
        fields = dict(item.split(": ", 1) for item in block if not item.startswith(":") and ": " in item)
        block = []
        if fields.get("event") == "alert":
            events.append({"id": int(fields["id"]), **json.loads(fields["data"])})
            if len(events) >= wanted:
                return events
    return events


def test_live_alert_events_resume_after_the_last_one_seen(
    dashboard_stack: DashboardStack, alerting: alerting_pb2_grpc.AlertingServiceStub
) -> None:
    headers = {"X-Civic-Tenant": TRANSIT}
    with httpx.stream("GET", f"{dashboard_stack.url}/api/alerts/events", headers=headers, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        (first,) = read_events(response.iter_lines(), 1)
    assert first["kind"] == "fired" and first["id"] == first["sequence"]
    alert_id = first["alert"]["id"]
    with httpx.stream("GET", f"{dashboard_stack.url}/api/alerts/events",
                      headers={**headers, "Last-Event-ID": str(first["id"])}, timeout=30) as response:
        lines = response.iter_lines()
        alerting.AssignAlert(alerting_pb2.AssignAlertRequest(
            tenant=TRANSIT, alert_id=alert_id, assignee="night shift", by="watcher"))
        events: list[dict[str, Any]] = []
        while not any(e["kind"] == "assigned" and e["alert"]["assignee"] == "night shift" for e in events):
            events += read_events(lines, 1)
    assert all(e["sequence"] > first["sequence"] for e in events)
    assigned = events[-1]
    assert (assigned["alert"]["id"], assigned["alert"]["assigned_by"]) == (alert_id, "watcher")


@pytest.fixture(scope="module")
def lone_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway whose services are not running: every call it makes fails (UNAVAILABLE)."""
    dead = {f"CIVIC_{name}_TARGET": f"127.0.0.1:{free_port()}" for name in ("SEARCH", "ALERTING", "INGESTION")}
    gateway, url = start_gateway({**dead, "CIVIC_RPC_TIMEOUT_S": "5"}, tmp_path_factory.mktemp("lone-gateway"))
    yield url
    stop_pid(gateway.pid)


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("GET", "/", {}, 200),
    ("GET", "/static/js/app.js", {}, 200),
    ("GET", "/api/config", {}, 200),
    ("GET", "/static/no-such-file.js", {}, 404),
    ("GET", "/no-such-page", {}, 404),
    ("GET", "/api/search?q=x", {}, 401),
    ("GET", "/api/search?sentiments=angry", {"X-Civic-Tenant": TRANSIT}, 400),
    ("GET", "/api/alerts/x/acknowledge", {"X-Civic-Tenant": TRANSIT}, 405),
    ("POST", "/api/silences", {"X-Civic-Tenant": TRANSIT, "Content-Type": "application/json"}, 413),
    ("GET", "/api/search?q=x", {"X-Civic-Tenant": TRANSIT}, 503),
])
def test_every_response_carries_the_security_headers(
    lone_gateway: str, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    body = b"x" * (300 * 1024) if method == "POST" else None
    reply = httpx.request(method, lone_gateway + path, headers=headers, content=body, timeout=60)
    assert reply.status_code == status, reply.text
    policy = reply.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(("query", "words"), [
    ("to=9999-12-31", "to: must be on or after 1970-01-01 and before 9999-01-01"),
    ("from=0001-01-01&to=0001-01-03", "from: must be on or after 1970-01-01 and before 9999-01-01"),
    ("from=1970-01-02&to=1970-01-05", "from: the period and the one before it must lie between 1970-01-01"),
    ("from=9998-12-31T20:00:00Z&to=9998-12-31T23:30:00Z",
     "from: the period and the one before it must lie between 1970-01-01 and 9999-01-01"),
])
def test_extreme_dates_of_the_overview_are_refused_in_words(lone_gateway: str, query: str, words: str) -> None:
    reply = httpx.get(f"{lone_gateway}/api/overview?{query}", headers={"X-Civic-Tenant": TRANSIT}, timeout=60)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == words or reply.json()["error"].startswith(words)


def test_extreme_dates_of_a_search_are_refused_in_words(lone_gateway: str) -> None:
    reply = httpx.get(f"{lone_gateway}/api/search?to=0001-01-02", headers={"X-Civic-Tenant": TRANSIT}, timeout=60)
    assert reply.status_code == 400 and reply.json()["field"] == "to"


MARKUP = 'Look: <em>sneaky</em> & "quoted" <script>alert(1)</script> at the bus stop'


def test_a_posts_own_markup_is_escaped_before_highlights_are_applied(dashboard_stack: DashboardStack) -> None:
    tenant = f"markup-{uuid.uuid4().hex[:8]}"
    ingest_and_wait(dashboard_stack, [make_post(tenant, "markup", MARKUP)])
    (hit,) = get(dashboard_stack, "/api/search?q=sneaky", tenant=tenant).json()["hits"]
    (fragment,) = hit["highlights"]
    assert fragment == ("Look: &lt;em&gt;<em>sneaky</em>&lt;&#x2F;em&gt; &amp; &quot;quoted&quot; "
                        "&lt;script&gt;alert(1)&lt;&#x2F;script&gt; at the bus stop")
    assert hit["text"] == MARKUP  # the post itself comes back as written, for the page to show as text


def test_dead_letters_are_listed_for_the_sources_page(dashboard_stack: DashboardStack) -> None:
    tenant = f"dead-{uuid.uuid4().hex[:8]}"
    assert get(dashboard_stack, "/api/failed-posts", tenant=tenant).json() == {"total": 0, "posts": []}
    insert_dead_letter(dashboard_stack, tenant, "lost-1", "IndexPosts: posts[0].post.source: too long")
    found = get(dashboard_stack, "/api/failed-posts?limit=5", tenant=tenant).json()
    assert found["total"] == 1
    (letter,) = found["posts"]
    assert (letter["channel"], letter["post_id"], letter["reason"]) == (
        "webhook", "lost-1", "IndexPosts: posts[0].post.source: too long")
    assert letter["failed_at"].endswith("Z")
    assert get(dashboard_stack, "/api/failed-posts?limit=500", tenant=tenant).status_code == 400
