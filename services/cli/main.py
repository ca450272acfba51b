"""`civic`: run the local stack, import posts, search, classify, and look at alerts from a terminal."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, cast

import grpc
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from civic.listening.v1 import (
    alerting_pb2,
    alerting_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    post_pb2,
    search_pb2,
    search_pb2_grpc,
    topics_pb2_grpc,
)
from services.cli import alerts as alerts_cli
from services.cli import demo_topics, render, trace, trends
from services.cli import failed as failed_cli
from services.cli import keys as keys_cli
from services.cli import sources as sources_cli
from services.cli import topics as topics_cli
from services.cli.classify import classify_texts
from services.cli.common import console, fail, friendly_errors, stub
from services.cli.stack import Stack, dashboard_url
from services.common.anomaly import DIRECTIONS, Direction, detect_csv
from services.common.settings import Settings, get_settings
from services.devstack.otlp_receiver import store_dir
from services.devstack.post_files import count_records, iter_posts

app = typer.Typer(help="civic-listening: social listening for public services.", no_args_is_help=True)
app.add_typer(sources_cli.app, name="sources")
app.add_typer(alerts_cli.app, name="alerts")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(topics_cli.app, name="topics")
app.add_typer(failed_cli.app, name="failed")
def settings() -> Settings:
    return get_settings()


# --- the stack ---------------------------------------------------------------------------------


@app.command()
@friendly_errors
def up() -> None:
    """Start Elasticsearch, Ray Serve (inference) and the ingestion, search and alerting services."""
    stack = Stack(settings())
    stack.up(lambda line: console.print(f"  {line}"))
    render.status_table(console, stack.status())
    console.print(f"Logs and pid files: {stack.run_dir}. Stop with `civic down`.")


@app.command()
@friendly_errors
def down(
    purge: Annotated[bool, typer.Option(help="Also delete the stack's data: spool, alerts, traces and its "
                                             "Elasticsearch's indices (logs are kept).")] = False,
) -> None:
    """Stop every process that `civic up` started (data is kept under the run directory unless --purge)."""
    stack = Stack(settings())
    stack.down(lambda line: console.print(f"  {line}"))
    if purge:
        stack.purge(lambda line: console.print(f"  {line}"))
    console.print("stack stopped" + (", its data deleted" if purge else ""))


@app.command()
@friendly_errors
def status(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Count only this agency's posts (a tenant's key "
                                                               "always gets its own agency's).")] = "",
) -> None:
    """Show each component's process, health and log, and the ingestion counters."""
    rows = Stack(settings()).status()
    render.status_table(console, rows)
    if any(row.name == "ingestion" and row.healthy for row in rows):
        stats = stub(ingestion_pb2_grpc.IngestionServiceStub, settings().ingestion_target)
        request = ingestion_pb2.GetIngestionStatsRequest(tenant=tenant)
        render.ingestion_stats(console, stats.GetIngestionStats(request))
    if not all(row.healthy for row in rows):
        raise typer.Exit(code=1)


@app.command("trace")
@friendly_errors
def trace_post(post_id: Annotated[str, typer.Argument(help="The post's id.")]) -> None:
    """Print the post's trace through the stack, with timings (from the receiver `civic up` starts)."""
    trace.show(console, store_dir(settings()), post_id)


# --- posts in ----------------------------------------------------------------------------------


def batches(path: Path, tenant: str | None, size: int, rejected: list[str]) -> Iterator[list[post_pb2.Post]]:
    batch: list[post_pb2.Post] = []
    for record in iter_posts(path, default_tenant=tenant):
        if record.post is None:
            rejected.append(record.error or f"line {record.line}: unreadable")
            continue
        batch.append(record.post)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def send_with_backoff(ingestion: Any, batch: list[post_pb2.Post]) -> ingestion_pb2.IngestPostsResponse:
    """A full spool is back-pressure, not failure: wait and send the same batch again."""
    delay = 0.5
    while True:
        try:
            return ingestion.IngestPosts(
                ingestion_pb2.IngestPostsRequest(posts=batch), timeout=settings().rpc_timeout_s
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:  # type: ignore[attr-defined]
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def wait_forwarded(ingestion: Any, timeout_s: float) -> ingestion_pb2.GetIngestionStatsResponse:
    """Waits until the forwarder has drained the spool, showing its progress."""
    stats = ingestion.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest())
    total = stats.pending + stats.forwarded
    deadline = time.monotonic() + timeout_s
    with progress() as bar:
        task = bar.add_task("enriching, indexing, alerting", total=total)
        while stats.pending > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stats.pending} posts still pending; last error: {stats.last_error}")
            time.sleep(1.0)
            stats = ingestion.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest())
            bar.update(task, completed=stats.forwarded, total=stats.pending + stats.forwarded)
    return stats


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )


@app.command()
@friendly_errors
def ingest(
    file: Annotated[Path, typer.Argument(help="A .jsonl or .csv file of posts.", exists=True, dir_okay=False)],
    tenant: Annotated[str | None, typer.Option(help="Tenant for rows that do not name one.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Posts per IngestPosts call.")] = 500,
    wait: Annotated[bool, typer.Option(help="Wait until every post is enriched and indexed.")] = False,
) -> None:
    """Import posts from a file, with a progress bar and a summary of accepted / rejected."""
    ingest_file(file, tenant, batch_size, wait)


def ingest_file(file: Path, tenant: str | None, batch_size: int, wait: bool) -> dict[str, int]:
    ingestion = stub(ingestion_pb2_grpc.IngestionServiceStub, settings().ingestion_target)
    unreadable: list[str] = []
    reasons: list[str] = []
    totals = {"accepted": 0, "rejected": 0, "duplicates": 0}
    with progress() as bar:
        task = bar.add_task(f"ingesting {file.name}", total=count_records(file))
        for batch in batches(file, tenant, batch_size, unreadable):
            reply = send_with_backoff(ingestion, batch)
            totals["accepted"] += reply.accepted
            totals["rejected"] += reply.rejected
            totals["duplicates"] += reply.duplicates
            reasons += [f"{r.id}: {r.reason}" for r in reply.results if r.reason]
            bar.update(task, advance=len(batch))
        bar.update(task, advance=len(unreadable))
    totals["rejected"] += len(unreadable)
    render.ingest_summary(console, totals, unreadable + reasons)
    if wait:
        wait_forwarded(ingestion, timeout_s=3600)
    return totals


# --- questions out -----------------------------------------------------------------------------

SENTIMENTS = {"negative": 1, "neutral": 2, "positive": 3}
EMOTIONS = {"anger": 1, "joy": 2, "optimism": 3, "sadness": 4}


def search_filters(
    channel_names: list[str], language: list[str], sentiment: list[str], emotion: list[str] | None = None,
    offensive: bool = False,
) -> search_pb2.SearchFilters:
    for option, given, allowed in (("--sentiment", sentiment, SENTIMENTS), ("--emotion", emotion or [], EMOTIONS)):
        unknown = [value for value in given if value not in allowed]
        if unknown:
            raise ValueError(f"{option} must be one of {', '.join(allowed)}, not {unknown[0]!r}")
    return search_pb2.SearchFilters(
        channels=channel_names, languages=language, sentiments=[SENTIMENTS[s] for s in sentiment],  # type: ignore[misc]
        emotions=[EMOTIONS[e] for e in emotion or []], offensive_only=offensive,  # type: ignore[misc]
    )


@app.command()
@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help='Boolean query, e.g. \'passport AND (delay OR "lost")\'.')],
    tenant: Annotated[str, typer.Option(help="Agency whose posts to search.")],
    channel_name: Annotated[list[str], typer.Option("--channel", help="Only this channel.")] = [],  # noqa: B006
    language: Annotated[list[str], typer.Option(help="Only this language.")] = [],  # noqa: B006
    sentiment: Annotated[list[str], typer.Option(help="negative, neutral or positive.")] = [],  # noqa: B006
    emotion: Annotated[list[str], typer.Option(help="anger, joy, optimism or sadness.")] = [],  # noqa: B006
    offensive: Annotated[bool, typer.Option("--offensive", help="Only offensive posts.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Search posts and print them as a table with their sentiment and emotion."""
    searcher = stub(search_pb2_grpc.SearchServiceStub, settings().search_target)
    reply = searcher.Search(
        search_pb2.SearchRequest(
            tenant=tenant, query=query, page_size=limit,
            filters=search_filters(channel_name, language, sentiment, emotion, offensive),
        ),
        timeout=settings().rpc_timeout_s,
    )
    render.search_results(console, query, reply)


app.command("trends")(friendly_errors(trends.trends))


@app.command()
@friendly_errors
def classify(
    local: Annotated[bool, typer.Option("--local", help="Run the model in-process, without the stack.")] = False,
    topics: Annotated[Path | None, typer.Option(
        "--topics", help="Topics YAML to score against (name: description, or name: {description, examples, "
                         "counter_examples, query, threshold}); default: the default topics.",
        exists=True, dir_okay=False)] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=256)] = 64,
) -> None:
    """Read texts, one per line, on stdin; write one JSON object per line with label, scores, tone, language,
    relevance (topic -> score) and topics (those at or above their threshold)."""
    classify_texts(sys.stdin.read().splitlines(), local, topics, batch_size)


@app.command("detect-anomalies")
@friendly_errors
def detect_anomalies(
    csv: Annotated[Path, typer.Option(help="NAB-style timestamp,value CSV.", exists=True, dir_okay=False)],
    sensitivity: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="0-1, higher alerts more; default: the product's.")
    ] = None,
    direction: Annotated[
        str, typer.Option(help="What is anomalous: rise (spikes, as volume_spike rules), fall (as volume_drop) "
                               "or both (as NAB labels anomalies).")
    ] = "rise",
) -> None:
    """Score a volume series: one JSON line per row with timestamp, score in [0,1] and alert."""
    if direction not in DIRECTIONS:
        raise ValueError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    for row in detect_csv(csv, sensitivity=sensitivity, direction=cast(Direction, direction)):
        sys.stdout.write(json.dumps(row) + "\n")


@app.command()
@friendly_errors
def demo(
    file: Annotated[Path, typer.Option(help="Posts to load.")] = Path("examples/posts.jsonl"),
) -> None:
    """Load the example posts into the running stack and show what the product sees in them."""
    if not file.exists():
        raise fail(f"{file} not found: run the demo from the repository root")
    tenants = sorted({r.post.tenant for r in iter_posts(file) if r.post is not None})
    topics = stub(topics_pb2_grpc.TopicServiceStub, settings().search_target)
    defined = demo_topics.define(topics, file.parent / "topics", tenants, settings().rpc_timeout_s)
    if defined:
        console.print(f"Defined {defined} agency topics from {file.parent / 'topics'}/")
    totals = ingest_file(file, tenant=None, batch_size=500, wait=True)
    if totals["duplicates"] and not totals["accepted"]:
        console.print(
            "[yellow]Every post was already loaded by an earlier run: what follows is what that run found, "
            "and rules added since have not seen these posts. For a fresh start: `civic down --purge`, "
            "then the demo again.[/yellow]"
        )
    searcher = stub(search_pb2_grpc.SearchServiceStub, settings().search_target)
    alerting = stub(alerting_pb2_grpc.AlertingServiceStub, settings().alerting_target)
    query = '"line 3" OR metro'
    render.search_results(
        console, query,
        searcher.Search(search_pb2.SearchRequest(tenant="city-transit", query=query, page_size=8)),
    )
    breakdowns = {
        tenant: searcher.Aggregate(
            search_pb2.AggregateRequest(tenant=tenant, dimension=search_pb2.AGGREGATE_DIMENSION_SENTIMENT)
        )
        for tenant in tenants
    }
    render.sentiment_breakdown(console, breakdowns)
    timeout = settings().rpc_timeout_s
    demo_topics.wait_retagged(topics, tenants, timeout)
    demo_topics.share_table(console, searcher, topics, tenants, timeout)
    channels = {r.post.id: r.post.channel for r in iter_posts(file) if r.post is not None}
    marked = demo_topics.review(topics, file.with_suffix(".topics.jsonl"), channels, tenants, timeout)
    if marked:
        console.print(f"An analyst reviews {demo_topics.REVIEWED_PER_SIDE} posts about each topic and "
                      f"{demo_topics.REVIEWED_PER_SIDE} about other things ({marked} marks): each topic's "
                      "classifier takes over and history is re-tagged.")
        demo_topics.wait_retagged(topics, tenants, timeout)
        demo_topics.share_table(console, searcher, topics, tenants, timeout)
        demo_topics.quality_table(console, topics, tenants, timeout)
    for tenant in tenants:
        render.alert_table(console, tenant, alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=tenant)).alerts)
    render.next_steps(console, tenants)
    console.print(f"Dashboard: [bold]{dashboard_url(settings(), tenants[0] if tenants else '')}[/bold] "
                  "(pick another agency at the top of the page)")


if __name__ == "__main__":
    app()
