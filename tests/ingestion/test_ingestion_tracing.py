"""Spooled posts carry the W3C trace context of the call that accepted them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from civic.listening.v1 import post_pb2
from services.common.settings import Settings
from services.ingestion.service import Ingestion
from services.ingestion.spool import SqliteSpool


def test_the_active_trace_is_stored_with_each_post(tmp_path: Path) -> None:
    settings = Settings(spool_path=tmp_path / "spool.sqlite3")
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    ingestion = Ingestion(settings, spool)
    post = post_pb2.Post(id="1", tenant="city-a", channel="rss", text="Water main break on 5th Avenue.")
    post.created_at.FromDatetime(datetime.now(UTC) - timedelta(hours=2))
    untraced = post_pb2.Post()
    untraced.CopyFrom(post)
    untraced.id = "2"

    with TracerProvider().get_tracer("caller").start_as_current_span("import") as span:
        ingestion.ingest([post])
    ingestion.ingest([untraced])

    traced, plain = spool.next_batch(10)
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert traced.trace_context.startswith(f"00-{trace_id}-")
    assert plain.trace_context == ""
    spool.close()
