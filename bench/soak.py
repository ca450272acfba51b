"""Soak: sustained IngestPosts from concurrent clients, above the model's rate, while one component
after another is killed; then every acknowledged post must be searchable exactly once.

Everything runs on loopback in a temporary directory (bench/soak_stack.py): a private Elasticsearch
node, inference (Ray Serve), search, alerting (one rule firing on the planted bursts) and ingestion
with its forwarder and a spool capped at --spool-max-pending, so that backpressure is exercised. Each
minute, 20 s in, one component is killed in turn (--kills) and the bench waits until it serves again.
After the load it waits for the spool to drain, then reads every document of the tenant from
Elasticsearch and prints offered, accepted, refused, indexed once, duplicated, lost, alerts raised
against bursts planted, p50/p99 post->searchable outside the kill windows, the time to drain and the
kill timeline. The rule notifies a local webhook receiver (bench/soak_receiver.py), which counts
requests by Idempotency-Key. Exit status 1 when a post is lost, duplicated or stored without being
sent, when a raised alert was never notified, or when a client saw an unexpected error.

With --alerting-replicas 2 alerting runs as two replicas on one local PostgreSQL and the kill of
"alerting" takes one of them down while the other goes on evaluating.

Run: nice .venv/bin/python -m bench.soak [--minutes 5] [--clients 20] [--rate R] [--seed 7]
     [--alerting-replicas 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from elasticsearch import Elasticsearch, helpers

from bench.soak_accounting import delivery, latencies_outside, percentile
from bench.soak_load import BURST_POSTS, RULE_ID, RULES_YAML, TENANT, Clients, PostSource, burst_times
from bench.soak_receiver import SECRET, Notifications, receiving
from bench.soak_stack import Stack, running_stack
from civic.listening.v1 import (
    alerting_pb2,
    alerting_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
)
from services.search.mapping import alias_name

COMPONENTS = ("inference", "search", "alerting", "elasticsearch", "ingestion")
INDEX_PREFIX = "soak"
KILL_OFFSET_S = 20.0
RESTART_TAIL_S = 5.0
DRAIN_LIMIT_S = 1800.0
NOTIFY_LIMIT_S = 60.0
WARM_CHUNK = 64


@dataclass(frozen=True)
class Kill:
    component: str
    at: float
    recovered: float
    what: str


def report(line: str) -> None:
    print(line, flush=True)


def measure_model_rate(stack: Stack, source: PostSource) -> float:
    """Enrich alone, as the forwarder calls it, on the soak's own texts; the first chunk warms up."""
    with grpc.insecure_channel(stack.targets["inference"]) as chan:
        stub = inference_pb2_grpc.InferenceServiceStub(chan)
        chunks = [source.batch(WARM_CHUNK) for _ in range(3)]
        stub.Enrich(inference_pb2.EnrichRequest(posts=chunks[0]), timeout=300)
        started = time.perf_counter()
        for chunk in chunks[1:]:
            stub.Enrich(inference_pb2.EnrichRequest(posts=chunk), timeout=300)
        return 2 * WARM_CHUNK / (time.perf_counter() - started)


def stats(stack: Stack) -> ingestion_pb2.GetIngestionStatsResponse:
    with grpc.insecure_channel(stack.targets["ingestion"]) as chan:
        return ingestion_pb2_grpc.IngestionServiceStub(chan).GetIngestionStats(
            ingestion_pb2.GetIngestionStatsRequest(), timeout=10
        )


def wait_drained(stack: Stack) -> ingestion_pb2.GetIngestionStatsResponse:
    deadline = time.monotonic() + DRAIN_LIMIT_S
    while True:
        try:
            current = stats(stack)
            if current.pending == 0:
                return current
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"spool not drained after {DRAIN_LIMIT_S:.0f}s")
        time.sleep(0.5)


def stored_documents(stack: Stack) -> tuple[dict[str, int], dict[str, float]]:
    """Documents per post id across every backing index of the tenant's alias, and when each post
    was (last) indexed."""
    counts: dict[str, int] = {}
    indexed: dict[str, float] = {}
    with Elasticsearch(stack.es.url, request_timeout=120) as es:
        alias = alias_name(INDEX_PREFIX, TENANT)
        es.indices.refresh(index=alias)
        for hit in helpers.scan(es, index=alias, query={"query": {"match_all": {}}},
                                _source=["post_id", "indexed_at"], size=2000):
            post_id = hit["_source"]["post_id"]
            counts[post_id] = counts.get(post_id, 0) + 1
            indexed[post_id] = dt.datetime.fromisoformat(hit["_source"]["indexed_at"]).timestamp()
    return counts, indexed


def marker_alerts(stack: Stack) -> int:
    with grpc.insecure_channel(stack.targets["alerting"]) as chan:
        reply = alerting_pb2_grpc.AlertingServiceStub(chan).ListAlerts(
            alerting_pb2.ListAlertsRequest(tenant=TENANT, limit=500), timeout=30
        )
    return sum(1 for alert in reply.alerts if alert.rule_id == RULE_ID)


def add_webhook(stack: Stack, url: str) -> None:
    with grpc.insecure_channel(stack.targets["alerting"]) as chan:
        alerting_pb2_grpc.AlertingServiceStub(chan).PutWebhook(alerting_pb2.PutWebhookRequest(
            webhook=alerting_pb2.Webhook(tenant=TENANT, id="soak", url=url, secret=SECRET, cooldown_seconds=1)
        ), timeout=30)


def wait_notified(notifications: Notifications, raised: int) -> None:
    deadline = time.monotonic() + NOTIFY_LIMIT_S
    while notifications.figures()[3] < raised and time.monotonic() < deadline:
        time.sleep(0.5)


def run_kills(stack: Stack, kills: list[str], start: float, minutes: int, restarting: threading.Event) -> list[Kill]:
    """Minute m kills kills[m % len(kills)] KILL_OFFSET_S into it, and waits until it serves again."""
    timeline = []
    for minute in range(minutes):
        if not kills:
            break
        component = kills[minute % len(kills)]
        time.sleep(max(0.0, start + minute * 60 + KILL_OFFSET_S - time.monotonic()))
        report(f"  minute {minute}: killing {component}")
        at = time.time()
        if component == "ingestion":
            restarting.set()
        what = stack.kill_and_recover(component)
        recovered = time.time()
        if component == "ingestion":
            threading.Timer(RESTART_TAIL_S, restarting.clear).start()
        timeline.append(Kill(component, at, recovered, what))
        report(f"  minute {minute}: {component} serves again after {recovered - at:.1f}s ({what})")
    return timeline


def run(args: argparse.Namespace, work: Path) -> int:
    (work / "rules.yaml").write_text(RULES_YAML)
    extra_env = {
        "CIVIC_INDEX_PREFIX": INDEX_PREFIX,
        "CIVIC_ALERTS_INDEX_PREFIX": f"{INDEX_PREFIX}-alerts",
        "CIVIC_RULES_FILE": str(work / "rules.yaml"),
        "CIVIC_SPOOL_MAX_PENDING": str(args.spool_max_pending),
        "CIVIC_RPC_TIMEOUT_S": "30",
    }
    with receiving() as notifications, running_stack(work, extra_env, report, args.alerting_replicas) as stack:
        add_webhook(stack, notifications.url)
        warm_source = PostSource(args.seed + 1, [])
        model_rate = measure_model_rate(stack, warm_source)
        rate = args.rate or round(1.5 * model_rate, 1)
        report(f"model alone (Enrich, {WARM_CHUNK}-post chunks): {model_rate:.1f} posts/s; offering {rate} posts/s "
               f"from {args.clients} clients for {args.minutes} min")
        start = time.monotonic()
        wall_start = time.time()
        source = PostSource(args.seed, list(burst_times(wall_start, args.minutes)))
        restarting = threading.Event()
        clients = Clients(stack.targets["ingestion"], source, args.clients, rate, args.batch, restarting.is_set)
        threads = clients.run(until=start + args.minutes * 60)
        timeline = run_kills(stack, args.kills, start, args.minutes, restarting)
        for thread in threads:
            thread.join()
        load_end = time.monotonic()
        report("load over; waiting for the backlog to drain")
        backlog = stats(stack).pending
        final = wait_drained(stack)
        drain_s = time.monotonic() - load_end
        time.sleep(2.0)  # the last batch's alert evaluation is part of its forwarding; let ListAlerts settle
        counts, indexed_at = stored_documents(stack)
        raised = marker_alerts(stack)
        wait_notified(notifications, raised)
    ledger = clients.ledger
    verdict = delivery(ledger.accepted_at, ledger.sent, counts)
    windows = [(kill.at, kill.recovered) for kill in timeline]
    outside = latencies_outside(ledger.accepted_at, indexed_at, windows)
    every = latencies_outside(ledger.accepted_at, indexed_at, [])
    hints = sorted(ledger.hints)
    requests, keys, repeated, notified = notifications.figures()
    lines = [
        ("alerting replicas", f"{args.alerting_replicas}{' on one PostgreSQL' if args.alerting_replicas > 1 else ''}"),
        ("offered (distinct posts sent)", f"{len(ledger.sent):,} ({len(ledger.sent) / (load_end - start):.1f}/s)"),
        ("accepted (acknowledged)", f"{len(ledger.accepted_at):,}"),
        ("refused (RESOURCE_EXHAUSTED calls)", f"{ledger.refusals:,}, {ledger.refusals_without_hint:,} without a retry "
         f"hint" + (f"; hints {hints[0]:.1f}-{hints[-1]:.1f}s" if hints else "")),
        ("calls failed while ingestion restarted", f"{ledger.restarts_seen:,}"),
        ("other client errors", f"{sum(ledger.failures.values()):,}"),
        ("rejected by validation", f"{ledger.rejected:,}"),
        ("indexed once", f"{verdict.indexed_once:,}"),
        ("duplicates (documents per post id > 1)", f"{len(verdict.duplicated):,}"),
        ("lost (acknowledged, not searchable)", f"{len(verdict.lost):,}"),
        ("stored but never sent", f"{len(verdict.never_sent):,}"),
        ("dead letters (spool failed)", f"{final.failed:,}"),
        ("alerts raised / bursts planted", f"{raised} / {len(source.planted_windows)} ({BURST_POSTS} posts each)"),
        ("firing alerts notified / raised", f"{notified} / {raised}"),
        ("webhook requests / distinct Idempotency-Keys / keys sent again", f"{requests} / {keys} / {repeated}"),
        ("post->searchable outside kills, p50 / p99", f"{percentile(outside, 0.5):.1f}s / "
         f"{percentile(outside, 0.99):.1f}s ({len(outside):,} posts)"),
        ("post->searchable, all posts, p50 / p99", f"{percentile(every, 0.5):.1f}s / {percentile(every, 0.99):.1f}s"),
        ("backlog at load end / time to drain", f"{backlog:,} posts / {drain_s:.1f}s"),
    ]
    print("\n| figure | value |\n|---|---|")
    for name, value in lines:
        print(f"| {name} | {value} |")
    print("\n| minute | killed | how | serving again after |\n|---:|---|---|---:|")
    for kill in timeline:
        minute = int((kill.at - wall_start) // 60)
        print(f"| {minute} | {kill.component} | {kill.what} | {kill.recovered - kill.at:.1f}s |")
    for failure, times in ledger.failures.most_common(10):
        print(f"client error x{times}: {failure}")
    for name, ids in (("lost", verdict.lost), ("duplicated", verdict.duplicated), ("never sent", verdict.never_sent)):
        if ids:
            print(f"{name}: {', '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}")
    if notified < raised:
        print(f"notified: {notified} of {raised} raised alerts reached the webhook receiver")
    bad = verdict.lost or verdict.duplicated or verdict.never_sent or ledger.failures or notified < raised
    return 1 if bad else 0


def kills_arg(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = set(names) - set(COMPONENTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown components {sorted(unknown)}; choose from {', '.join(COMPONENTS)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5, help="minutes of load (one kill each)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent IngestPosts clients")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="posts/s offered in all (default: 1.5 x the model's rate measured at start)")
    parser.add_argument("--batch", type=int, default=5, help="posts per IngestPosts call")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kills", type=kills_arg, default=list(COMPONENTS),
                        help=f"components killed in turn, one a minute (default {','.join(COMPONENTS)}; '' none)")
    parser.add_argument("--alerting-replicas", type=int, default=1, choices=range(1, 5),
                        help="alerting replicas; 2 or more share a local PostgreSQL and the kill takes one down")
    parser.add_argument("--spool-max-pending", type=int, default=1500,
                        help="CIVIC_SPOOL_MAX_PENDING: the backlog at which IngestPosts answers RESOURCE_EXHAUSTED")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="civic-soak-") as tmp:
        status = run(args, Path(tmp))
    sys.exit(status)


if __name__ == "__main__":
    main()
