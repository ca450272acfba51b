"""`civic sources ...`: register, list, pause, resume, delete and inspect a tenant's channel sources.

A secret is read from an environment variable or a prompt, never from the command line (where it
would land in shell history and `ps`), and is never printed back: the server only says has_secret.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.table import Table

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.cli.common import console, friendly_errors, stub
from services.common.settings import get_settings

app = typer.Typer(help="Channel sources that ingestion polls (or receives webhooks for).", no_args_is_help=True)
STATES = {ingestion_pb2.SOURCE_STATE_ACTIVE: "active", ingestion_pb2.SOURCE_STATE_PAUSED: "paused"}

Tenant = Annotated[str, typer.Option("--tenant", "-t", help="The agency that owns the sources.")]
SourceId = Annotated[str, typer.Argument(help="The source id, as `civic sources list` shows it.")]


def _stub() -> ingestion_pb2_grpc.IngestionServiceStub:
    return stub(ingestion_pb2_grpc.IngestionServiceStub, get_settings().ingestion_target)


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        params[name] = value
    return params


def _show(source: ingestion_pb2.Source) -> None:
    status = source.status
    console.print(f"[bold]{source.name}[/bold]  id={source.id}  kind={source.kind}  {STATES.get(source.state, '?')}")
    secret = "yes" if source.has_secret else "no"
    console.print(f"  url: {source.url or '-'}  every {source.interval_s}s  secret: {secret}")
    if source.params:
        console.print(f"  params: {json.dumps(dict(source.params), sort_keys=True)}")
    polled = status.last_polled_at.ToJsonString() if status.HasField("last_polled_at") else "never"
    console.print(f"  last polled: {polled}  cursor: {status.cursor}", highlight=False)
    console.print(
        f"  polls {status.polls}, accepted {status.accepted}, duplicates {status.duplicates}, rejected "
        f"{status.rejected}, skipped {status.skipped}, errors {status.errors}, deleted {status.deleted}"
    )
    if status.last_error:
        console.print(f"  [red]last error:[/red] {status.last_error}", highlight=False)


@app.command()
@friendly_errors
def create(
    tenant: Tenant,
    name: Annotated[str, typer.Argument(help="Unique within the tenant, e.g. city-newsroom.")],
    kind: Annotated[str, typer.Option(help="rss, mastodon, reddit, bluesky, youtube, open311 or webhook.")],
    url: Annotated[str, typer.Option(help="Feed / API base / Jetstream URL; none for webhook.")] = "",
    param: Annotated[list[str] | None, typer.Option(help="Connector option NAME=VALUE, repeatable.")] = None,
    secret_env: Annotated[
        str, typer.Option(help="Environment variable holding the API token, key or webhook secret.")
    ] = "",
    interval: Annotated[int, typer.Option(help="Seconds between polls (0 = 300).")] = 0,
) -> None:
    """Register a source; it starts active."""
    secret = ""
    if secret_env:
        secret = os.environ.get(secret_env, "")
        if not secret:
            raise ValueError(f"--secret-env: ${secret_env} is not set")
    spec = ingestion_pb2.SourceSpec(
        tenant=tenant, name=name, kind=kind, url=url, params=_parse_params(param or []), secret=secret,
        interval_s=interval,
    )
    _show(_stub().CreateSource(ingestion_pb2.CreateSourceRequest(spec=spec)).source)


@app.command("list")
@friendly_errors
def list_sources(tenant: Tenant) -> None:
    """The tenant's sources with state and counters."""
    sources = _stub().ListSources(ingestion_pb2.ListSourcesRequest(tenant=tenant)).sources
    table = Table("id", "name", "kind", "state", "accepted", "errors", "last error")
    for s in sources:
        table.add_row(s.id, s.name, s.kind, STATES.get(s.state, "?"), str(s.status.accepted),
                      str(s.status.errors), s.status.last_error[:60])
    console.print(table if sources else f"no sources for {tenant}")


@app.command()
@friendly_errors
def pause(tenant: Tenant, source_id: SourceId) -> None:
    """Stop polling a source; its cursor is kept."""
    _show(_stub().PauseSource(ingestion_pb2.PauseSourceRequest(tenant=tenant, id=source_id)).source)


@app.command()
@friendly_errors
def resume(tenant: Tenant, source_id: SourceId) -> None:
    """Poll a paused source again from its cursor."""
    _show(_stub().ResumeSource(ingestion_pb2.ResumeSourceRequest(tenant=tenant, id=source_id)).source)


@app.command()
@friendly_errors
def delete(tenant: Tenant, source_id: SourceId) -> None:
    """Forget a source, its secret and cursor (its posts stay)."""
    _stub().DeleteSource(ingestion_pb2.DeleteSourceRequest(tenant=tenant, id=source_id))
    console.print(f"deleted {source_id}")


@app.command()
@friendly_errors
def status(tenant: Tenant, source_id: SourceId) -> None:
    """A source's cursor, last error and counters."""
    _show(_stub().GetSourceStatus(ingestion_pb2.GetSourceStatusRequest(tenant=tenant, id=source_id)).source)
