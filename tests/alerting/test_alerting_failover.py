"""Two alerting processes on one PostgreSQL, one of them SIGKILLed while 5,000 posts with planted
spikes flow: every planted alert exists once, counted over each of its posts once, and each notification
reaches the local webhook receiver once (by its Idempotency-Key; a kill during an HTTP request may make
the receiver see one twice, with the same key, which the test reports)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import Popen

import grpc
import pytest

from civic.listening.v1 import alerting_pb2, alerting_pb2_grpc, post_pb2
from services.alerting.server import SERVICE_NAME
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from tests.alerting.helpers import MONDAY, enriched, rule

log = logging.getLogger(__name__)

POSTS = 5000
BATCH = 100
SPIKES = 12
SPIKE_POSTS = 30
HOURS = 48
KILL_AT_BATCH = 25
RESTART_AT_BATCH = 38
TIMEOUT_S = 2.0  # webhook timeout: a claim lasts 2 x 2 + 5 s
CLAIM_S = 2 * TIMEOUT_S + 5
SECRET = "failover-test-secret-0123"
NOISE = ["the bus was late", "park benches repainted", "library hours extended", "road works on main street"]


@dataclass
class Delivery:
    at: float
    key: str
    rules: list[str]


@dataclass
class CountingReceiver:
    """Counts every POST as it arrives (before answering, slowly, to widen the window a kill can hit)."""

    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def keys(self) -> set[str]:
        with self.lock:
            return {d.key for d in self.deliveries}


@pytest.fixture
def counting_receiver() -> Iterator[CountingReceiver]:
    state = CountingReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.deliveries.append(Delivery(
                    time.monotonic(), self.headers.get("Idempotency-Key", ""), [a["rule_id"] for a in body["alerts"]]
                ))
            time.sleep(0.2)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=state.server.serve_forever, daemon=True).start()
    yield state
    state.server.shutdown()
    state.server.server_close()


def stream() -> tuple[list[post_pb2.EnrichedPost], list[str]]:
    """POSTS posts over HOURS hours in event-time order; spike k puts SPIKE_POSTS posts with its own
    word in one hour (no other post has it, so its alert fires once and never resolves)."""
    planted = [f"spike{k}" for k in range(SPIKES)]
    posts = []
    for k, word in enumerate(planted):
        hour = MONDAY + timedelta(hours=2 + k * (HOURS - 4) // SPIKES)
        posts += [enriched(f"{word}-{i}", hour + timedelta(seconds=100 * i), f"{word} reported near the depot")
                  for i in range(SPIKE_POSTS)]
    noise = POSTS - len(posts)
    posts += [enriched(f"noise-{i}", MONDAY + timedelta(hours=HOURS) * i / noise, NOISE[i % len(NOISE)])
              for i in range(noise)]
    posts.sort(key=lambda p: (p.post.created_at.seconds, p.post.id))
    return posts, planted


class Replica:
    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name, self.env, self.logs = name, env, logs
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.process: Popen[bytes] | None = None
        self.channel = grpc.insecure_channel(self.target)
        self.stub = alerting_pb2_grpc.AlertingServiceStub(self.channel)

    def start(self) -> None:
        env = {**self.env, "CIVIC_ALERTING_PORT": str(self.port)}
        self.process = spawn(["services.alerting"], env, self.logs / f"{self.name}.log")
        wait_healthy(self.target, 90, SERVICE_NAME, process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process.pid)
            self.process = None
        self.channel.close()


@pytest.mark.slow
def test_alerts_and_notifications_once_while_a_replica_is_killed(
    postgres_url: str, counting_receiver: CountingReceiver, tmp_path: Path
) -> None:
    env = {
        "CIVIC_ALERTING_DATABASE_URL": postgres_url,
        "CIVIC_ALERTING_STATE_PATH": str(tmp_path / "unused.sqlite3"),  # must stay unused
        "CIVIC_ALERTS_INDEX_PREFIX": "",
        "CIVIC_ALERTING_TICK_S": "0.2",
        "CIVIC_WEBHOOK_TIMEOUT_S": str(TIMEOUT_S),
        "CIVIC_WEBHOOK_BACKOFF_BASE_S": "0.5",
    }
    replicas = [Replica("a", env, tmp_path), Replica("b", env, tmp_path)]
    try:
        for replica in replicas:
            replica.start()
        posts, planted = stream()
        first = replicas[0].stub
        first.PutWebhook(alerting_pb2.PutWebhookRequest(webhook=alerting_pb2.Webhook(
            tenant="city-a", id="ops", url=counting_receiver.url, secret=SECRET, cooldown_seconds=1,
        )), timeout=10)
        for word in planted:
            first.PutRule(alerting_pb2.PutRuleRequest(rule=rule(word, "query_match", query=word, threshold=20)),
                          timeout=10)
        first.PutRule(alerting_pb2.PutRuleRequest(rule=rule("quiet", "query_match", query="bus", threshold=10**6)),
                      timeout=10)

        failovers, killed_at = 0, 0.0
        for number, start in enumerate(range(0, POSTS, BATCH)):
            request = alerting_pb2.EvaluatePostsRequest(posts=posts[start:start + BATCH])
            order = [replicas[number % 2], replicas[(number + 1) % 2]]
            if number == RESTART_AT_BATCH:
                replicas[0].start()
            if number == KILL_AT_BATCH:  # killed while it evaluates this batch
                call = replicas[0].stub.EvaluatePosts.future(request, timeout=30)
                time.sleep(0.01)
                replicas[0].kill()
                killed_at = time.monotonic()
                try:
                    call.result()
                    log.warning("batch %d was answered before its replica was killed", number)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                    log.warning("batch %d: its replica was killed while evaluating it; sent to the other", number)
                    failovers += 1
                    replicas[1].stub.EvaluatePosts(request, timeout=30)
                continue
            for attempt, replica in enumerate(order):
                try:
                    replica.stub.EvaluatePosts(request, timeout=30)
                    break
                except grpc.RpcError as exc:  # the killed replica: the batch goes to the survivor
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), exc
                    assert attempt == 0, "both replicas refused a batch"
                    failovers += 1

        deadline = time.monotonic() + 60 + CLAIM_S
        while len(counting_receiver.keys()) < len(planted):
            assert time.monotonic() < deadline, f"{len(counting_receiver.keys())} of {len(planted)} notified"
            time.sleep(0.2)
        time.sleep(CLAIM_S + 2)  # an abandoned claim would have expired and been sent again by now

        for replica in replicas:
            alerts = list(replica.stub.ListAlerts(alerting_pb2.ListAlertsRequest(tenant="city-a", limit=500),
                                                  timeout=10).alerts)
            assert sorted(a.rule_id for a in alerts) == sorted(planted), replica.name
            assert len({a.id for a in alerts}) == len(planted)
            assert {a.post_count for a in alerts} == {SPIKE_POSTS}  # redelivered posts counted once
            assert {a.state for a in alerts} == {alerting_pb2.ALERT_STATE_FIRING}

        deliveries = counting_receiver.deliveries
        keys = counting_receiver.keys()
        by_key: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_key.setdefault(delivery.key, []).append(delivery)
        repeated = {key: copies for key, copies in by_key.items() if len(copies) > 1}
        log.warning(
            "failover: %d posts in %d batches, 1 replica SIGKILLed at batch %d and restarted at %d, %d failovers; "
            "alerts planted %d, found %d on each replica; deliveries raw %d, distinct keys %d, repeated %d",
            POSTS, POSTS // BATCH, KILL_AT_BATCH, RESTART_AT_BATCH, failovers, len(planted), len(planted),
            len(deliveries), len(keys), len(repeated),
        )
        assert len(keys) == len(planted) and all(keys)
        assert sorted(rule_id for copies in by_key.values() for rule_id in copies[0].rules) == sorted(planted)
        # A repeat is only the request a killed replica was sending: first copy before the kill, the
        # second from the survivor once the claim expired; everything else was delivered exactly once.
        assert len(repeated) <= 1
        for key, copies in repeated.items():
            log.warning("notification %s was being sent when its replica was killed: delivered twice", key)
            assert len(copies) == 2 and copies[0].at <= killed_at + 0.5 < copies[1].at
            assert copies[0].rules == copies[1].rules
        assert len(deliveries) == len(planted) + len(repeated)
    finally:
        for replica in replicas:
            replica.stop()
