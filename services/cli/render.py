"""Tables and summaries that the CLI prints: readable in a terminal, one place for their layout."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from civic.listening.v1 import alerting_pb2, ingestion_pb2, post_pb2, search_pb2
from services.cli.stack import ComponentStatus
from services.common import enum_names

SENTIMENT_STYLE = {"negative": "red", "neutral": "yellow", "positive": "green"}


def sentiment_name(value: int) -> str:
    return enum_names.word(post_pb2.SentimentLabel, value) or "unspecified"


def status_table(console: Console, rows: Sequence[ComponentStatus]) -> None:
    table = Table(title="civic-listening stack")
    for column in ("component", "address", "pid", "state", "log"):
        table.add_column(column)
    for row in rows:
        state = "[green]healthy[/green]" if row.healthy else (
            "[yellow]starting/unhealthy[/yellow]" if row.running else "[red]stopped[/red]"
        )
        table.add_row(row.name, row.address, str(row.pid or "-"), state, str(row.log or ""))
    console.print(table)


def ingestion_stats(console: Console, stats: ingestion_pb2.GetIngestionStatsResponse) -> None:
    whose = f" ({stats.tenant})" if stats.tenant else ""
    console.print(
        f"ingestion{whose}: {stats.accepted} accepted, {stats.forwarded} forwarded, {stats.pending} pending, "
        f"{stats.failed} failed downstream (`civic failed list`), "
        f"{stats.rejected} rejected, {stats.duplicates} duplicates, {stats.deleted} deleted by their authors"
        + (f" ({stats.deletions_pending} still to remove)" if stats.deletions_pending else "")
        + (f"; forwarder stalled since {stats.stalled_since.ToJsonString()}" if stats.HasField("stalled_since") else "")
        + (f"; last error: {stats.last_error}" if stats.last_error else ""),
        soft_wrap=True,  # one line, also when piped into a script
    )


def ingest_summary(console: Console, totals: Mapping[str, int], reasons: Sequence[str]) -> None:
    console.print(
        f"[green]{totals['accepted']} accepted[/green], [red]{totals['rejected']} rejected[/red], "
        f"{totals['duplicates']} duplicates (already ingested)"
    )
    for reason in reasons[:10]:
        console.print(f"  rejected {reason}", highlight=False)
    if len(reasons) > 10:
        console.print(f"  ... and {len(reasons) - 10} more")


def feeling(enrichment: post_pb2.Enrichment) -> str:
    """Sentiment, then the emotion and "offensive" (when the tone heads ran), one per line so that
    the column stays narrow."""
    label = sentiment_name(enrichment.sentiment)
    lines = [f"[{SENTIMENT_STYLE.get(label, 'white')}]{label}[/]"]
    if emotion := enum_names.word(post_pb2.Emotion, enrichment.emotion):
        lines.append(emotion)
    if enrichment.offensive:
        lines.append("[red]offensive[/red]")
    return "\n".join(lines)


def search_results(console: Console, query: str, reply: search_pb2.SearchResponse) -> None:
    """One row per hit; the text as its author wrote it (PII redacted), the normalized text for
    posts indexed before display_text existed."""
    table = Table(title=f"{reply.total} posts match {query!r}", show_lines=False)
    for column in ("time (UTC)", "channel", "lang", "sentiment", "topics"):
        table.add_column(column, overflow="fold")
    table.add_column("text", overflow="fold", ratio=1)  # the rest of the width
    for hit in reply.hits:
        post, enrichment = hit.post.post, hit.post.enrichment
        table.add_row(
            post.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M"),
            post.channel,
            post.language,
            feeling(enrichment),
            ", ".join(enrichment.topics) or enrichment.topic or "-",
            escape((post.display_text or post.text)[:280]),
        )
    console.print(table)


def sentiment_breakdown(console: Console, breakdowns: Mapping[str, search_pb2.AggregateResponse]) -> None:
    table = Table(title="Sentiment breakdown")
    table.add_column("agency")
    for label in SENTIMENT_STYLE:
        table.add_column(label, justify="right")
    table.add_column("posts", justify="right")
    for tenant, reply in breakdowns.items():
        counts = {bucket.key: bucket.count for bucket in reply.buckets}
        total = max(reply.total, 1)
        table.add_row(
            tenant,
            *[f"{counts.get(label, 0)} ({100 * counts.get(label, 0) / total:.0f}%)" for label in SENTIMENT_STYLE],
            str(reply.total),
        )
    console.print(table)


def alert_table(console: Console, tenant: str, alerts: Iterable[alerting_pb2.Alert]) -> None:
    rows = list(alerts)
    if not rows:
        console.print(f"No alerts for {tenant}.")
        return
    table = Table(title=f"Action queue of {tenant} (highest priority first)")
    for column in ("priority", "severity", "state", "rule", "window (UTC)", "posts", "summary"):
        table.add_column(column, overflow="fold")
    for alert in rows:
        table.add_row(
            f"{alert.priority:.0f}",
            enum_names.word(alerting_pb2.Severity, alert.severity),
            enum_names.word(alerting_pb2.AlertState, alert.state),
            alert.rule_name,
            alert.window_start.ToDatetime().strftime("%Y-%m-%d %H:%M"),
            str(alert.post_count),
            alert.summary,
        )
    console.print(table)


def next_steps(console: Console, tenants: Sequence[str]) -> None:
    tenant = tenants[0] if tenants else "city-transit"
    console.print(
        "\n[bold]Query further[/bold]\n"
        f"  .venv/bin/civic search 'outage AND NOT resolved' --tenant {tenant} --sentiment negative\n"
        f"  .venv/bin/civic alerts --tenant {tenant}\n"
        "  echo 'The passport office lost my application' | .venv/bin/civic classify\n"
        "  .venv/bin/civic status\n"
        "[bold]Stop the stack[/bold]\n"
        "  .venv/bin/civic down"
    )
