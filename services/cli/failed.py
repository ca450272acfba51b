"""`civic failed list|replay`: the posts the forwarder gave up on (dead letters), and sending them again.

A dead letter waits in the spool with its reason; once the cause is fixed (a mapping, a model, a
downstream bug), `replay` puts it back in the queue, and one that fails again is a dead letter again.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.cli.common import console, friendly_errors, stub
from services.common.settings import get_settings

app = typer.Typer(help="Posts the forwarder gave up on (dead letters), and replaying them.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option("--tenant", "-t", help="The agency whose dead letters these are.")]
PostIds = Annotated[list[str] | None, typer.Option("--id", help="Only this post id (repeatable); default: all.")]


def _stub() -> ingestion_pb2_grpc.IngestionServiceStub:
    return stub(ingestion_pb2_grpc.IngestionServiceStub, get_settings().ingestion_target)


@app.command("list")
@friendly_errors
def list_failed(
    tenant: Tenant, post_id: PostIds = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Dead letters shown, latest first.")] = 20,
) -> None:
    """The tenant's dead letters, the latest first, with the reason of each."""
    reply = _stub().ListFailedPosts(ingestion_pb2.ListFailedPostsRequest(
        tenant=tenant, post_ids=post_id or [], page_size=limit), timeout=get_settings().rpc_timeout_s)
    if not reply.total:
        console.print(f"no dead letters for {tenant}")
        return
    table = Table(title=f"{reply.total} dead letters of {tenant}")
    for column in ("failed at (UTC)", "channel", "post id", "reason"):
        table.add_column(column, overflow="fold")
    for post in reply.posts:
        table.add_row(post.failed_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), post.channel,
                      escape(post.post_id), escape(post.reason))
    console.print(table)


@app.command()
@friendly_errors
def replay(tenant: Tenant, post_id: PostIds = None) -> None:
    """Put the tenant's dead letters (or those ids) back in the queue; `civic status` shows them pending."""
    reply = _stub().ReplayFailedPosts(ingestion_pb2.ReplayFailedPostsRequest(
        tenant=tenant, post_ids=post_id or []), timeout=get_settings().rpc_timeout_s)
    console.print(f"{reply.replayed} posts back in the queue, {reply.remaining} dead letters left")
