"""The whole product as a user runs it: `civic up`, posts over gRPC and from a file, search, alerts,
classify (through the stack and in-process), `civic down`. Every process is real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import (
    alerting_pb2,
    alerting_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    post_pb2,
    search_pb2,
    search_pb2_grpc,
    topics_pb2,
    topics_pb2_grpc,
)
from services.devstack.launch import free_port, pid_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
CIVIC = str(Path(sys.executable).with_name("civic"))
TENANT = "e2e-agency"

RULES = f"""
- id: bridge-mentions
  tenant: {TENANT}
  name: Bridge closure chatter
  kind: query_match
  query: bridge
  threshold: 3
  window_seconds: 3600
  severity: critical
- id: fares-topic
  tenant: {TENANT}
  name: Posts about the agency's fares topic
  kind: query_match
  query: "topic:fares"
  threshold: 3
  window_seconds: 3600
  severity: warning
"""


def civic(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CIVIC, *args], env={**os.environ, **env}, input=stdin, capture_output=True, text=True,
        timeout=timeout, cwd=REPO,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str) -> Iterator[dict[str, str]]:
    run_dir = tmp_path_factory.mktemp("stack")
    rules = run_dir / "rules.yaml"
    rules.write_text(RULES)
    env = {
        "CIVIC_RUN_DIR": str(run_dir),
        "ES_URL": elasticsearch_url,
        "CIVIC_RULES_FILE": str(rules),
        "CIVIC_ES_REFRESH_ON_INDEX": "true",
        "CIVIC_INFERENCE_HTTP_PORT": str(free_port()),
        "CIVIC_OTLP_RECEIVER_PORT": str(free_port()),
        "CIVIC_STACK_WEBHOOK_PORT": str(free_port()),
        "CIVIC_GATEWAY_PORT": str(free_port()),
    }
    for service in ("ingestion", "search", "alerting", "inference"):
        port = free_port()
        env[f"CIVIC_{service.upper()}_PORT"] = str(port)
        env[f"CIVIC_{service.upper()}_TARGET"] = f"127.0.0.1:{port}"
    started = civic(env, "up", timeout=900)
    assert started.returncode == 0, started.stdout + started.stderr
    yield env
    assert (run_dir / "data" / "spool.sqlite3").exists()
    stopped = civic(env, "down", "--purge", timeout=300)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not list(run_dir.glob("*.pid")), "civic down left pid files behind"
    # --purge forgets the posts and alerts, so a demo loaded again is evaluated afresh; the logs stay.
    assert not (run_dir / "data").exists() and not (run_dir / "telemetry").exists()
    assert (run_dir / "logs" / "ingestion.log").exists()


def stub(env: dict[str, str], service: str, factory):  # type: ignore[no-untyped-def]
    return factory(grpc.insecure_channel(env[f"CIVIC_{service.upper()}_TARGET"]))


def post(post_id: str, text: str, minute: int = 0, followers: int = 10) -> post_pb2.Post:
    created = Timestamp()
    created.FromSeconds(1_763_000_000 + minute * 60)
    return post_pb2.Post(
        id=post_id, tenant=TENANT, channel="mastodon", source="#cityhall",
        author=post_pb2.Author(id=f"author-{post_id}", name="Resident", follower_count=followers),
        text=text, created_at=created, url=f"https://example.org/synthetic/{post_id}",
    )


def wait_forwarded(env: dict[str, str], timeout_s: float = 300) -> ingestion_pb2.GetIngestionStatsResponse:
    ingestion = stub(env, "ingestion", ingestion_pb2_grpc.IngestionServiceStub)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = ingestion.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest())
        if stats.pending == 0 and stats.forwarded > 0:
            return stats
        time.sleep(0.5)
    raise AssertionError(f"posts still pending: {stats}")


def test_status_reports_every_component_healthy(stack: dict[str, str]) -> None:
    result = civic(stack, "status")
    assert result.returncode == 0, result.stdout + result.stderr
    for component in ("inference", "search", "alerting", "ingestion", "gateway"):
        assert component in result.stdout
    assert "ingestion: " in result.stdout and " forwarded, " in result.stdout  # all tenants: no key here
    mine = civic(stack, "status", "--tenant", TENANT)
    assert f"ingestion ({TENANT}): " in mine.stdout and " failed downstream " in mine.stdout, mine.stdout


def test_civic_up_serves_the_dashboard(stack: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{stack['CIVIC_GATEWAY_PORT']}"
    page = httpx.get(f"{url}/", timeout=30)
    assert page.status_code == 200 and "<title>civic-listening</title>" in page.text
    reply = httpx.get(f"{url}/api/alerts", headers={"X-Civic-Tenant": TENANT}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert isinstance(reply.json()["alerts"], list)


def test_posts_flow_from_ingestion_to_a_search_hit_with_sentiment(stack: dict[str, str]) -> None:
    ingestion = stub(stack, "ingestion", ingestion_pb2_grpc.IngestionServiceStub)
    reply = ingestion.IngestPosts(
        ingestion_pb2.IngestPostsRequest(
            posts=[
                post("p1", "The bridge closure is a disaster, two hours stuck and nobody tells us anything.", 1),
                post("p2", "", 2),
                post("p3", "Thank you to the crews who reopened the bridge so quickly, great work!", 3),
                post("p4", "Is the bridge open tomorrow morning? Write to jane.doe@example.com", 4),
            ]
        )
    )
    outcomes = [r.outcome for r in reply.results]
    assert outcomes == [
        ingestion_pb2.POST_OUTCOME_ACCEPTED,
        ingestion_pb2.POST_OUTCOME_REJECTED,
        ingestion_pb2.POST_OUTCOME_ACCEPTED,
        ingestion_pb2.POST_OUTCOME_ACCEPTED,
    ]
    assert "text" in reply.results[1].reason
    wait_forwarded(stack)

    search = stub(stack, "search", search_pb2_grpc.SearchServiceStub)
    found = search.Search(search_pb2.SearchRequest(tenant=TENANT, query="bridge", page_size=10))
    by_id = {hit.post.post.id: hit.post for hit in found.hits}
    assert set(by_id) == {"p1", "p3", "p4"}
    assert by_id["p1"].enrichment.sentiment == post_pb2.SENTIMENT_LABEL_NEGATIVE
    assert by_id["p3"].enrichment.sentiment == post_pb2.SENTIMENT_LABEL_POSITIVE
    assert by_id["p1"].post.language == "en"
    assert "jane.doe@example.com" not in by_id["p4"].post.text
    assert by_id["p1"].enrichment.model_versions.encoder

    negatives = search.Search(
        search_pb2.SearchRequest(
            tenant=TENANT, query="bridge",
            filters=search_pb2.SearchFilters(sentiments=[post_pb2.SENTIMENT_LABEL_NEGATIVE]),
        )
    )
    assert [hit.post.post.id for hit in negatives.hits] == ["p1"]

    alerting = stub(stack, "alerting", alerting_pb2_grpc.AlertingServiceStub)
    alerts = alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=TENANT)).alerts
    assert [a.rule_id for a in alerts] == ["bridge-mentions"]
    assert alerts[0].post_count == 3
    assert alerts[0].priority > 0


def test_civic_trace_prints_the_post_journey(stack: dict[str, str]) -> None:
    ingestion = stub(stack, "ingestion", ingestion_pb2_grpc.IngestionServiceStub)
    text = "Street lights out again on Maple Avenue."
    ingestion.IngestPosts(ingestion_pb2.IngestPostsRequest(posts=[post("traced", text, 5)]))
    wait_forwarded(stack)
    deadline = time.monotonic() + 30
    while True:  # spans reach the local receiver within a few seconds of the work
        result = civic(stack, "trace", "traced")
        hops = ("IngestPosts", "forward_posts", "model.enrich", "index_posts", "bulk", "evaluate_posts")
        if all(hop in result.stdout for hop in hops) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(hop in result.stdout for hop in hops), result.stdout
    assert " ms" in result.stdout
    unknown = civic(stack, "trace", "no-such-post")
    assert unknown.returncode == 1 and "no-such-post" in unknown.stderr


def test_ingest_and_search_from_the_command_line(stack: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "posts.jsonl"
    rows = [
        {"id": "cli-1", "tenant": TENANT, "channel": "reddit", "source": "r/city",
         "text": "Le bureau des passeports a perdu mes documents, c'est inadmissible.",
         "created_at": "2026-11-10T09:00:00Z"},
        {"id": "cli-2", "tenant": TENANT, "channel": "reddit", "source": "r/city",
         "text": "Passport renewal went smoothly today, well done.", "created_at": "2026-11-10T09:05:00Z"},
        {"id": "cli-3", "tenant": TENANT, "channel": "reddit", "text": "no created_at here"},
    ]
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    result = civic(stack, "ingest", str(source), "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 accepted" in result.stdout and "1 rejected" in result.stdout
    assert "created_at" in result.stdout

    result = civic(stack, "search", "passeports", "--tenant", TENANT)
    assert result.returncode == 0, result.stderr
    assert "cli-1" not in result.stdout  # ids are not shown, the text is
    assert "perdu" in result.stdout and "negative" in result.stdout


def test_classify_through_the_stack_matches_the_local_model(stack: dict[str, str]) -> None:
    texts = "I love how fast the new bus line is!\nLa oficina de pasaportes es un desastre total.\n\n"
    remote = civic(stack, "classify", stdin=texts)
    assert remote.returncode == 0, remote.stderr
    local = civic(stack, "classify", "--local", stdin=texts)
    assert local.returncode == 0, local.stderr
    remote_rows = [json.loads(line) for line in remote.stdout.splitlines()]
    local_rows = [json.loads(line) for line in local.stdout.splitlines()]
    assert len(remote_rows) == len(local_rows) == 3
    assert [r["label"] for r in remote_rows] == [r["label"] for r in local_rows]
    assert remote_rows[0]["label"] == "positive" and remote_rows[1]["label"] == "negative"
    assert remote_rows[1]["language"] == "es"
    for remote_row, local_row in zip(remote_rows, local_rows, strict=True):
        assert set(remote_row["scores"]) == {"negative", "neutral", "positive"}
        for label, score in remote_row["scores"].items():
            assert abs(score - local_row["scores"][label]) < 0.02


def test_classify_with_a_topics_file_prints_relevance_and_topics(stack: dict[str, str], tmp_path: Path) -> None:
    topics = tmp_path / "topics.yaml"
    topics.write_text("fares:\n  description: fares, ticket prices and passes\n  query: fare OR ticket\n"
                      "  threshold: 0.01\nlibraries: public libraries, borrowing books and opening hours\n")
    texts = "The ticket price went up again.\nThe library opens late on Sundays.\n"
    for args in (("classify", "--topics", str(topics)), ("classify", "--local", "--topics", str(topics))):
        done = civic(stack, *args, stdin=texts)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        assert [set(row["relevance"]) for row in rows] == [{"fares", "libraries"}] * 2
        assert "fares" in rows[0]["topics"] and "fares" not in rows[1]["topics"]  # the query gates it
        assert rows[1]["relevance"]["fares"] == 0.0
        assert rows[1]["relevance"]["libraries"] > rows[0]["relevance"]["libraries"]
    default = [json.loads(line) for line in civic(stack, "classify", stdin=texts).stdout.splitlines()]
    assert "public_transit" in default[0]["relevance"] and isinstance(default[0]["topics"], list)
    bad = tmp_path / "bad.yaml"
    bad.write_text("Fares!: fares\n")
    refused = civic(stack, "classify", "--topics", str(bad), stdin=texts)
    assert refused.returncode != 0 and "Fares!" in refused.stderr and "name" in refused.stderr


def test_topics_from_the_command_line(stack: dict[str, str]) -> None:
    tenant = "e2e-cli-topics"
    wide = {**stack, "COLUMNS": "400"}  # tables unwrapped, so that their cells can be read
    put = civic(stack, "topics", "put", "--tenant", tenant, "--by", "cli tester",
                "--file", str(REPO / "examples" / "topics" / "city-transit.yaml"), "--wait")
    assert put.returncode == 0, put.stderr
    assert "service_reliability: version" in put.stdout and "job done" in put.stdout
    listed = civic(wide, "topics", "list", "--tenant", tenant)
    assert listed.returncode == 0 and "topic set version 5" in listed.stdout
    assert "fares_and_tickets" in listed.stdout and "examples, 8+/0- marks" in listed.stdout
    jobs = civic(wide, "topics", "jobs", "--tenant", tenant)
    assert jobs.returncode == 0 and jobs.stdout.count("put topic") == 5
    shown = civic(wide, "topics", "show", "fares_and_tickets", "--tenant", tenant)
    assert shown.returncode == 0 and "by cli tester" in shown.stdout and "example:" in shown.stdout
    deleted = civic(stack, "topics", "delete", "staff_and_conduct", "--tenant", tenant, "--by", "cli tester")
    assert deleted.returncode == 0 and "staff_and_conduct deleted" in deleted.stdout
    missing = civic(stack, "topics", "delete", "staff_and_conduct", "--tenant", tenant, "--by", "cli tester")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    estimate = civic(wide, "topics", "reenrich", "--tenant", tenant)
    assert estimate.returncode == 0 and "0 of 0 posts" in estimate.stdout


def test_alerts_follow_the_agencys_own_topics(stack: dict[str, str]) -> None:
    """A topic the agency defines tags posts at indexing, and alerting sees those tags: a rule on
    `topic:fares` fires on the posts the agency's topic claims, not on the default topics."""
    topics = stub(stack, "search", topics_pb2_grpc.TopicServiceStub)
    # A must-match query and a low threshold make the tagging certain whatever the model's scores.
    topics.PutTopic(topics_pb2.PutTopicRequest(tenant=TENANT, by="e2e", topic=topics_pb2.Topic(
        name="fares", description="fares, ticket prices and passes", query="fare OR fares OR ticket",
        threshold=0.01)))
    ingestion = stub(stack, "ingestion", ingestion_pb2_grpc.IngestionServiceStub)
    texts = ["The fare went up again this month.", "My monthly ticket costs too much now.",
             "Why are the fares so high on the night bus?", "The park by the river is lovely today."]
    reply = ingestion.IngestPosts(ingestion_pb2.IngestPostsRequest(
        posts=[post(f"fare-{i}", text, minute=600 + i) for i, text in enumerate(texts)]))
    assert reply.accepted == 4
    wait_forwarded(stack)
    search = stub(stack, "search", search_pb2_grpc.SearchServiceStub)
    tagged = search.Search(search_pb2.SearchRequest(tenant=TENANT, filters=search_pb2.SearchFilters(
        topics=["fares"]))).hits
    assert sorted(hit.post.post.id for hit in tagged) == ["fare-0", "fare-1", "fare-2"]
    assert all(hit.post.enrichment.topic_set_version >= 1 for hit in tagged)
    alerting = stub(stack, "alerting", alerting_pb2_grpc.AlertingServiceStub)
    deadline = time.monotonic() + 60
    while not (fired := [a for a in alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=TENANT)).alerts
                         if a.rule_id == "fares-topic"]):
        assert time.monotonic() < deadline, "the topic rule did not fire"
        time.sleep(0.5)
    assert fired[0].post_count == 3
    assert sorted(fired[0].sample_post_ids) == ["mastodon/fare-0", "mastodon/fare-1", "mastodon/fare-2"]


def test_bad_input_gives_one_line_and_non_zero_exit(stack: dict[str, str], tmp_path: Path) -> None:
    missing = civic(stack, "ingest", str(tmp_path / "nope.jsonl"))
    assert missing.returncode != 0
    bad_query = civic(stack, "search", "*leading", "--tenant", TENANT)
    assert bad_query.returncode != 0
    assert "query" in bad_query.stderr and "Traceback" not in bad_query.stderr


def test_commands_say_when_the_stack_is_not_running(tmp_path: Path) -> None:
    nowhere = {f"CIVIC_{s}_TARGET": f"127.0.0.1:{free_port()}" for s in ("INGESTION", "SEARCH", "INFERENCE")}
    for args in (("search", "x", "--tenant", "a"), ("classify",)):
        result = civic({**nowhere, "CIVIC_RPC_TIMEOUT_S": "3"}, *args, stdin="hello\n")
        assert result.returncode == 1
        assert "civic up" in result.stderr and "Traceback" not in result.stderr


def test_down_stops_every_process(stack: dict[str, str]) -> None:
    """Runs last in this module: stops the stack the fixture started and checks nothing is left."""
    run_dir = Path(stack["CIVIC_RUN_DIR"])
    pids = {p.stem: int(p.read_text()) for p in run_dir.glob("*.pid")}
    assert set(pids) >= {"inference", "search", "alerting", "ingestion"}
    assert all(pid_alive(pid) for pid in pids.values())
    result = civic(stack, "down", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(pid_alive(pid) for pid in pids.values())
    assert civic(stack, "status").returncode == 1
