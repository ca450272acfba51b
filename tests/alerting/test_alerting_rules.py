"""Rule files, query words and baselines; the demo rules against the example week; the server process."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc, post_pb2
from services.alerting.conditions import baseline
from services.alerting.rule_file import load_rules
from services.alerting.rules import post_document
from services.alerting.server import build_server
from services.alerting.service import open_alerting
from services.common.boolean_query import Document, parse
from services.common.errors import InvalidArgument
from services.common.settings import Settings
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from services.devstack.post_files import iter_posts

ROOT = Path(__file__).resolve().parents[2]
DEMO_RULES = ROOT / "examples" / "rules.yaml"
EXAMPLE_POSTS = ROOT / "examples" / "posts.jsonl"


def test_query_words_are_case_insensitive_and_hashtags_keep_their_mark() -> None:
    words = Document.of("Relief payments CANCELLED unless you pay! #ReliefFee Línea 3")
    assert parse("#relieffee payments").matches(words)
    assert parse("relieffee").matches(words)  # a plain word also matches the hashtag
    assert parse("línea 3 cancelled").matches(words)
    assert not parse("#payments").matches(words)  # a hashtag query needs the hashtag
    assert not parse("relief fee").matches(words)
    assert parse("").matches(words)


def test_rules_see_what_channels_say_beyond_the_text() -> None:
    post = post_pb2.Post(id="r1", tenant="t", channel="open311", text="Deep pothole in the bike lane",
                         hashtags=["potholes"], mentions=["cityhall@gov.example"], categories=["Streets"],
                         conversation_id="r1", sensitive=False)
    post.service_request.status, post.service_request.service_code = "open", "POT-01"
    post.service_request.agency = "Public Works"
    seen = post_document(post_pb2.EnrichedPost(post=post))
    assert parse("hashtag:#Potholes AND mention:cityhall@gov.example AND category:streets").matches(seen)
    assert parse('status:open AND service_code:pot-01 AND agency:"public works" AND sensitive:false').matches(seen)
    assert parse("conversation:r1 AND NOT severity:severe").matches(seen)
    assert not parse("sensitive:true OR hashtag:flood").matches(seen)


def test_baseline_counts_missing_windows_as_zero_and_is_at_least_one() -> None:
    hour = 3600
    assert baseline({}, 100 * hour, hour) == 1.0
    assert baseline({h * hour: 6 for h in range(76, 100)}, 100 * hour, hour) == 6.0
    assert baseline({h * hour: 10 for h in range(88, 100)}, 100 * hour, hour) == 5.0  # 12 of 24 windows
    assert baseline({100 * hour: 500, 99 * hour: 8}, 100 * hour, hour) == 1.0  # own window not counted


def test_demo_rules_file_gives_each_tenant_its_rules() -> None:
    rules = {(r.tenant, r.id): r for r in load_rules(DEMO_RULES)}
    tenants = {"city-transit", "passport-office", "emergency-mgmt"}
    assert {tenant for tenant, _ in rules} == tenants
    for tenant in tenants:
        kinds = {r.kind: r for (t, _), r in rules.items() if t == tenant}
        spike = kinds[alerting_pb2.RULE_KIND_VOLUME_SPIKE]
        negative = kinds[alerting_pb2.RULE_KIND_NEGATIVE_SHARE]
        assert (spike.window_seconds, spike.threshold, spike.min_posts) == (3600, 4, 25)
        assert (negative.window_seconds, negative.threshold, negative.min_posts) == (86400, 60, 30)
    anger = rules[("city-transit", "city-transit-anger-surge")]
    assert (anger.kind, anger.threshold, anger.window_seconds, anger.min_posts, dict(anger.labels)) == (
        alerting_pb2.RULE_KIND_ANGER_SURGE, 25, 3600, 20, {"team": "metro"}
    )
    relief = rules[("emergency-mgmt", "emergency-mgmt-relief-fee")]
    assert (relief.kind, relief.query, relief.window_seconds, relief.threshold, relief.severity) == (
        alerting_pb2.RULE_KIND_QUERY_MATCH, "#relieffee", 21600, 15, alerting_pb2.SEVERITY_CRITICAL
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("- {id: a, tenant: t, kind: spike, threshold: 2, window_seconds: 3600}", "rules_file[0].kind"),
        ("- {id: a, tenant: t, threshold: 2, window_seconds: 3600}", "rules_file[0].kind"),
        ("- {id: a, tenant: t, kind: query_match, threshold: 2, window_seconds: 3600, severity: huge}",
         "rules_file[0].severity"),
        ("- {id: a, tenant: t, kind: query_match, threshold: 2, window: 3600}", "rules_file[0].window"),
        ("- {id: a, tenant: t, kind: query_match, threshold: many, window_seconds: 3600}", "rules_file[0].threshold"),
        ("- {id: a, tenant: t, kind: query_match, threshold: 2, window_seconds: 3600}\n"
         "- {id: a, tenant: t, kind: volume_spike, threshold: 2, window_seconds: 3600}", "rules_file[1].id"),
        ("- {id: a, tenant: T!, kind: query_match, threshold: 2, window_seconds: 3600}", "rules_file[0].tenant"),
        ("- just a string", "rules_file[0]"),
        ("id: a", "rules_file"),
        ("- {id: a, tenant: t, kind: query_match, threshold: 2, window_seconds: 3600, labels: [x]}",
         "rules_file[0].labels"),
        ("- {id: a, tenant: t, kind: query_match, threshold: 2, window_seconds: 3600, labels: {rule: x}}",
         "rules_file[0].labels"),
        ("- {id: a, tenant: t, kind: volume_spike, threshold: 2, window_seconds: 3600, sensitivity: 2}",
         "rules_file[0].sensitivity"),
        ("- {id: a, tenant: t, kind: anger_surge, threshold: 120, window_seconds: 3600}", "rules_file[0].threshold"),
        ("- {id: a, tenant: t, kind: anger_surge, threshold: 30, window_seconds: 3600, min_posts: -5}",
         "rules_file[0].min_posts"),
    ],
)
def test_rules_file_errors_name_the_entry_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(InvalidArgument) as caught:
        load_rules(path)
    assert caught.value.field == field


def test_rules_file_is_put_over_stored_rules_at_start_up(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("- {id: a, tenant: t, kind: query_match, query: bins, threshold: 2, window_seconds: 3600}\n")
    settings = Settings(alerting_state_path=tmp_path / "state.sqlite3", rules_file=rules_file, alerts_index_prefix="")
    first = open_alerting(settings)
    first.put_rule(alerting_pb2.Rule(id="a", tenant="t", kind="RULE_KIND_QUERY_MATCH", threshold=9, window_seconds=60))
    first.put_rule(alerting_pb2.Rule(id="b", tenant="t", kind="RULE_KIND_VOLUME_SPIKE", threshold=3, window_seconds=60))
    first.close()
    second = open_alerting(settings)
    assert [(r.id, r.threshold, r.query) for r in second.list_rules("t")] == [("a", 2.0, "bins"), ("b", 3.0, "")]
    second.close()


def example_week() -> list[post_pb2.EnrichedPost]:
    """The example posts with an empty enrichment: volume and query rules need no model."""
    return [post_pb2.EnrichedPost(post=record.post) for record in iter_posts(EXAMPLE_POSTS) if record.post]


def test_demo_rules_find_the_planted_outage_and_rumour(tmp_path: Path) -> None:
    settings = Settings(alerting_state_path=tmp_path / "state.sqlite3", rules_file=DEMO_RULES, alerts_index_prefix="")
    alerting = open_alerting(settings)
    server = build_server(settings, alerting, port=0).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
            stub = alerting_pb2_grpc.AlertingServiceStub(chan)
            posts = example_week()
            for i in range(0, len(posts), 500):
                stub.EvaluatePosts(alerting_pb2.EvaluatePostsRequest(posts=posts[i : i + 500]), timeout=60)
            alerts = {
                tenant: list(stub.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=tenant), timeout=10).alerts)
                for tenant in ("city-transit", "passport-office", "emergency-mgmt")
            }
    finally:
        server.stop(0)
        alerting.close()
    spikes = [a for a in alerts["city-transit"] if a.rule_id == "city-transit-volume-spike"]
    outage = (datetime(2026, 11, 13, 14, tzinfo=UTC), datetime(2026, 11, 13, 18, tzinfo=UTC))
    assert spikes, "the Line 3 outage raised no volume spike"
    assert all(outage[0] <= a.window_start.ToDatetime(tzinfo=UTC) < outage[1] for a in spikes)
    assert Counter(a.state for a in spikes)[alerting_pb2.ALERT_STATE_RESOLVED] == len(spikes)
    rumour = [a for a in alerts["emergency-mgmt"] if a.rule_id == "emergency-mgmt-relief-fee"]
    assert rumour, "the #ReliefFee rumour raised no alert"
    assert all(a.window_start.ToDatetime(tzinfo=UTC).date().isoformat() in ("2026-11-11", "2026-11-12") for a in rumour)
    assert all(a.severity == alerting_pb2.SEVERITY_CRITICAL and a.post_count >= 15 for a in rumour)
    assert alerts["passport-office"] == []
    voices = [a for a in alerts["emergency-mgmt"] if a.rule_id == "emergency-mgmt-relief-fee-voices"]
    assert voices and all(a.labels["team"] == "comms" for a in voices)
    assert all(a.window_start.ToDatetime(tzinfo=UTC).date().isoformat() in ("2026-11-11", "2026-11-12") for a in voices)
    line3 = [a for a in alerts["city-transit"] if a.rule_id == "city-transit-line-3"]
    assert line3 and all(outage[0] <= a.window_start.ToDatetime(tzinfo=UTC) < outage[1] for a in line3)
    # The posts carry no emotion here (no model ran): the anger-surge rule has nothing to count.
    assert not [a for a in alerts["city-transit"] if a.rule_id == "city-transit-anger-surge"]


def test_module_starts_the_server_with_its_rules_file(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "CIVIC_ALERTING_PORT": str(port),
        "CIVIC_ALERTING_STATE_PATH": str(tmp_path / "state.sqlite3"),
        "CIVIC_RULES_FILE": str(DEMO_RULES),
        "CIVIC_BIND_HOST": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
    }
    process = spawn(["services.alerting"], env, tmp_path / "alerting.log")
    try:
        wait_healthy(f"127.0.0.1:{port}", 60, process=process)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
            stub = alerting_pb2_grpc.AlertingServiceStub(chan)
            reply = stub.ListRules(alerting_pb2.ListRulesRequest(tenant="emergency-mgmt"), timeout=10)
        assert [r.id for r in reply.rules] == [
            "emergency-mgmt-negative-day", "emergency-mgmt-relief-fee", "emergency-mgmt-relief-fee-voices",
            "emergency-mgmt-volume-spike",
        ]
    finally:
        stop_pid(process.pid)
    log = (tmp_path / "alerting.log").read_text()
    assert "loaded 10 rules" in log and "shutting down" in log and "Traceback" not in log, log[-2000:]
