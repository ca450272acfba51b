"""`civic trends`: volume over time with the sentiment (or tone) split of each interval, as terminal bars.

Each row is one interval: a bar whose length is the interval's volume, coloured by sentiment
(negative red, neutral yellow, positive green, not yet classified dim), and the counts beside it.
With `--tone` the bar is coloured by emotion instead (anger red, joy green, optimism cyan, sadness
blue, no tone scores dim) and the counts are the emotions and the offensive posts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table
from rich.text import Text

from civic.listening.v1 import search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import get_settings

INTERVALS = {"1h": search_pb2.TIME_INTERVAL_HOUR, "1d": search_pb2.TIME_INTERVAL_DAY,
             "1w": search_pb2.TIME_INTERVAL_WEEK}
LABEL_FORMAT = {"1h": "%Y-%m-%d %H:00", "1d": "%Y-%m-%d", "1w": "week of %Y-%m-%d"}
BAR_WIDTH = 50
SEGMENTS = (("negative", "red"), ("neutral", "yellow"), ("positive", "green"), ("unclassified", "bright_black"))
TONE_SEGMENTS = (("anger", "red"), ("joy", "green"), ("optimism", "cyan"), ("sadness", "blue"),
                 ("unscored", "bright_black"))


def parse_time(value: str, option: str) -> Timestamp:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} must be an ISO 8601 date or time such as 2026-11-01 or "
                         f"2026-11-01T08:00, not {value!r}") from None
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return stamp


def request_for(tenant: str, query: str, interval: str, start: str | None, end: str | None
                ) -> search_pb2.VolumeOverTimeRequest:
    if interval not in INTERVALS:
        raise ValueError(f"--interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    filters = search_pb2.SearchFilters()
    if start:
        filters.created_from.CopyFrom(parse_time(start, "--from"))
    if end:
        filters.created_to.CopyFrom(parse_time(end, "--to"))
    return search_pb2.VolumeOverTimeRequest(tenant=tenant, query=query, filters=filters, interval=INTERVALS[interval])


def segment_counts(bucket: search_pb2.VolumeBucket, by_tone: bool) -> dict[str, int]:
    """The interval's posts per bar segment; the last segment is what the others leave out."""
    if by_tone:
        counts = {"anger": bucket.anger, "joy": bucket.joy, "optimism": bucket.optimism, "sadness": bucket.sadness}
        counts["unscored"] = bucket.count - sum(counts.values())
    else:
        counts = {"negative": bucket.negative, "neutral": bucket.neutral, "positive": bucket.positive}
        counts["unclassified"] = bucket.count - sum(counts.values())
    return counts


def bar(bucket: search_pb2.VolumeBucket, largest: int, by_tone: bool = False) -> Text:
    counts = segment_counts(bucket, by_tone)
    text = Text()
    for name, style in TONE_SEGMENTS if by_tone else SEGMENTS:
        text.append("█" * round(BAR_WIDTH * counts[name] / largest) if largest else "", style=style)
    return text


def render(console: Console, tenant: str, interval: str, reply: search_pb2.VolumeOverTimeResponse,
           last: int, by_tone: bool = False) -> None:
    buckets = list(reply.buckets)[-last:]
    if not buckets:
        console.print(f"no posts for {tenant} match")
        return
    largest = max(bucket.count for bucket in buckets)
    table = Table(title=f"{tenant}: posts per {interval} ({reply.total} in all)", box=None)
    table.add_column("interval")
    table.add_column("volume")
    table.add_column("posts", justify="right")
    segments = TONE_SEGMENTS[:-1] if by_tone else SEGMENTS[:-1]
    for name, style in segments:
        table.add_column(name[:3], justify="right", style=style)
    if by_tone:
        table.add_column("off", justify="right", style="magenta")
    for bucket in buckets:
        counts = segment_counts(bucket, by_tone)
        cells = [str(counts[name]) for name, _ in segments] + ([str(bucket.offensive)] if by_tone else [])
        table.add_row(bucket.start.ToDatetime(UTC).strftime(LABEL_FORMAT[interval]), bar(bucket, largest, by_tone),
                      str(bucket.count), *cells)
    console.print(table)
    legend = TONE_SEGMENTS if by_tone else SEGMENTS
    console.print(Text.assemble(*((f"█ {name}  ", style) for name, style in legend),
                                *((("off = offensive", "magenta"),) if by_tone else ())))


def trends(
    tenant: Annotated[str, typer.Option(help="Agency whose posts to chart.")],
    query: Annotated[str, typer.Option(help="Boolean query; empty charts every post.")] = "",
    interval: Annotated[str, typer.Option(help="Bar length: 1h, 1d or 1w.")] = "1d",
    start: Annotated[str | None, typer.Option("--from", help="First time (ISO 8601, UTC by default).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End time, exclusive (ISO 8601).")] = None,
    last: Annotated[int, typer.Option(min=1, max=1000, help="Show at most the last N intervals.")] = 30,
    tone: Annotated[bool, typer.Option("--tone", help="Split by emotion and count offensive posts.")] = False,
) -> None:
    """Volume and sentiment (or, with --tone, emotion) over time, one bar per interval."""
    request = request_for(tenant, query, interval, start, end)
    settings = get_settings()
    with channel(settings.search_target, settings) as chan:
        reply = search_pb2_grpc.SearchServiceStub(chan).VolumeOverTime(request, timeout=settings.rpc_timeout_s)
    render(Console(), tenant, interval, reply, last, tone)
