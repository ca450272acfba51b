"""Source management over real gRPC, the scheduler polling a local channel server into a real spool,
and the webhook receiver over HTTP with HMAC signatures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from civic.listening.v1 import ingestion_pb2, ingestion_pb2_grpc, post_pb2
from services.common.settings import Settings
from services.ingestion.connectors.webhook import SIGNATURE_HEADER, sign
from services.ingestion.scheduler import Scheduler
from services.ingestion.server import build_server
from services.ingestion.service import Ingestion
from services.ingestion.sources import PollOutcome, SourceStore
from services.ingestion.spool import SqliteSpool
from services.ingestion.webhook_server import WebhookServer
from tests.fixtures.channel_servers import ChannelServer, JetstreamServer, Reply, wait_until
from tests.fixtures.channel_servers import jetstream_commit as commit

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
<item><title>Road closure on Route 9</title><guid>r9</guid><pubDate>Mon, 03 Mar 2025 09:00:00 GMT</pubDate>
<description>Detour via Main St.</description></item>
<item><title>Call 555-123-4567 for bulky waste pickup</title><guid>bw</guid>
<pubDate>Mon, 03 Mar 2025 10:00:00 GMT</pubDate></item>
</channel></rss>"""


@dataclass
class Stack:
    settings: Settings
    spool: SqliteSpool
    store: SourceStore
    scheduler: Scheduler
    stub: ingestion_pb2_grpc.IngestionServiceStub
    webhook_url: str

    def stored(self) -> list[post_pb2.Post]:
        return [post_pb2.Post.FromString(p.payload) for p in self.spool.next_batch(10_000)]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    settings = Settings(spool_path=tmp_path / "spool.sqlite3", spool_max_pending=3, connector_max_retries=1)
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    store = SourceStore(settings.spool_path)
    ingestion = Ingestion(settings, spool)
    scheduler = Scheduler(settings, store, ingestion.ingest, ingestion.delete)
    server = build_server(settings, ingestion, port=0, sources=store).start()
    webhooks = WebhookServer(scheduler, "127.0.0.1", 0).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield Stack(settings, spool, store, scheduler, ingestion_pb2_grpc.IngestionServiceStub(channel),
                f"http://127.0.0.1:{webhooks.port}/webhooks")
    channel.close()
    webhooks.stop()
    server.stop(0)
    store.close()
    spool.close()


def create(stack: Stack, **spec: object) -> ingestion_pb2.Source:
    request = ingestion_pb2.CreateSourceRequest(spec=ingestion_pb2.SourceSpec(**spec))  # type: ignore[arg-type]
    return stack.stub.CreateSource(request, timeout=10).source


def test_lifecycle_is_per_tenant_and_never_echoes_secrets(stack: Stack) -> None:
    source = create(stack, tenant="city-a", name="mastodon-potholes", kind="mastodon",
                    url="https://social.example", params={"hashtag": "potholes"}, secret="s3cret-token")
    assert source.has_secret and source.state == ingestion_pb2.SOURCE_STATE_ACTIVE
    assert source.interval_s == 300 and source.params["hashtag"] == "potholes"
    create(stack, tenant="city-b", name="mastodon-potholes", kind="rss", url="https://b.example/feed")
    listed = stack.stub.ListSources(ingestion_pb2.ListSourcesRequest(tenant="city-a"), timeout=10).sources
    assert [s.id for s in listed] == [source.id]
    assert "s3cret-token" not in str(listed) and "s3cret-token" not in source.SerializeToString().decode("latin1")

    paused = stack.stub.PauseSource(ingestion_pb2.PauseSourceRequest(tenant="city-a", id=source.id), timeout=10)
    assert paused.source.state == ingestion_pb2.SOURCE_STATE_PAUSED
    assert stack.store.due(now=1e12) == [s.id for s in stack.stub.ListSources(
        ingestion_pb2.ListSourcesRequest(tenant="city-b"), timeout=10).sources]
    resumed = stack.stub.ResumeSource(ingestion_pb2.ResumeSourceRequest(tenant="city-a", id=source.id), timeout=10)
    assert resumed.source.state == ingestion_pb2.SOURCE_STATE_ACTIVE

    with pytest.raises(grpc.RpcError) as other_tenant:
        stack.stub.GetSourceStatus(ingestion_pb2.GetSourceStatusRequest(tenant="city-b", id=source.id), timeout=10)
    assert other_tenant.value.code() == grpc.StatusCode.NOT_FOUND
    stack.stub.DeleteSource(ingestion_pb2.DeleteSourceRequest(tenant="city-a", id=source.id), timeout=10)
    assert not stack.stub.ListSources(ingestion_pb2.ListSourcesRequest(tenant="city-a"), timeout=10).sources


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"tenant": "", "name": "n", "kind": "rss", "url": "https://x"}, "spec.tenant"),
        ({"tenant": "t", "name": "", "kind": "rss", "url": "https://x"}, "spec.name"),
        ({"tenant": "t", "name": "n", "kind": "twitter", "url": "https://x"}, "spec.kind"),
        ({"tenant": "t", "name": "n", "kind": "rss", "url": "feed.xml"}, "spec.url"),
        ({"tenant": "t", "name": "n", "kind": "webhook"}, "spec.secret"),
        ({"tenant": "t", "name": "n", "kind": "rss", "url": "https://x", "interval_s": -1}, "spec.interval_s"),
    ],
)
def test_invalid_specs_name_the_field(stack: Stack, spec: dict[str, object], field: str) -> None:
    with pytest.raises(grpc.RpcError) as error:
        create(stack, **spec)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(field)


def test_scheduler_ingests_through_the_domain_path_and_persists_the_cursor(
    stack: Stack, channel_server: ChannelServer
) -> None:
    channel_server.route("/feed.xml", Reply(200, FEED.encode(), {"ETag": '"e1"'}))
    source = create(stack, tenant="city-a", name="news", kind="rss", url=f"{channel_server.url}/feed.xml",
                    interval_s=60)
    assert stack.scheduler.poll_due(now=1e9) == 1
    stored = stack.stored()
    assert [(p.id, p.tenant, p.channel) for p in stored] == [("r9", "city-a", "rss"), ("bw", "city-a", "rss")]
    assert "[PHONE]" in stored[1].text and stored[1].redactions == 1 and stored[0].language == "en"
    status = stack.stub.GetSourceStatus(
        ingestion_pb2.GetSourceStatusRequest(tenant="city-a", id=source.id), timeout=10).source.status
    assert json.loads(status.cursor)["etag"] == '"e1"'
    assert (status.polls, status.accepted, status.last_error) == (1, 2, "")
    assert stack.scheduler.poll_due(now=1e9 + 30) == 0  # not due before its interval

    # The next poll sends the cursor back (If-None-Match) and the 304 adds nothing.
    channel_server.route("/feed.xml", Reply(304, b""))
    stack.scheduler.poll(source.id)
    assert channel_server.requests_to("/feed.xml")[-1].headers["if-none-match"] == '"e1"'
    assert len(stack.stored()) == 2


def test_a_failed_poll_records_the_error_and_keeps_the_cursor(
    stack: Stack, channel_server: ChannelServer
) -> None:
    channel_server.route("/feed.xml", Reply(200, FEED.encode(), {"ETag": '"e1"'}))
    source = create(stack, tenant="city-a", name="news", kind="rss", url=f"{channel_server.url}/feed.xml")
    stack.scheduler.poll(source.id)
    channel_server.route("/feed.xml", Reply(500, "boom"))
    stack.scheduler.poll(source.id)
    status = stack.store.get("city-a", source.id).status
    assert "HTTP 500" in status.last_error and status.errors == 1 and json.loads(status.cursor)["etag"] == '"e1"'


def test_a_full_spool_keeps_the_cursor_so_nothing_is_lost(stack: Stack, channel_server: ChannelServer) -> None:
    items = "".join(
        f"<item><title>Notice {n}</title><guid>n{n}</guid><pubDate>Mon, 03 Mar 2025 0{n}:00:00 GMT</pubDate></item>"
        for n in range(5)
    )
    channel_server.route("/feed.xml", Reply(200, f"<rss version='2.0'><channel>{items}</channel></rss>".encode()))
    source = create(stack, tenant="city-a", name="news", kind="rss", url=f"{channel_server.url}/feed.xml")
    stack.spool.max_pending = 0  # full
    stack.scheduler.poll(source.id)
    status = stack.store.get("city-a", source.id).status
    assert status.cursor == "{}" and "pending" in status.last_error
    stack.spool.max_pending = 100
    stack.scheduler.poll(source.id)
    assert [p.id for p in stack.stored()] == [f"n{n}" for n in range(5)]


def test_webhook_verifies_hmac_and_ingests(stack: Stack) -> None:
    source = create(stack, tenant="city-a", name="forms", kind="webhook", secret="hook-secret")
    url = f"{stack.webhook_url}/{source.id}"
    body = json.dumps({"posts": [
        {"id": "f1", "text": "Streetlight out on 5th Ave", "createdAt": "2025-03-01T10:00:00Z",
         "tenant": "someone-else", "author": {"id": "u1"}},
        {"id": "f2", "text": "", "createdAt": "2025-03-01T10:00:00Z"},
        {"id": "f3", "createdAt": "not a time"},
    ]}).encode()
    unsigned = httpx.post(url, content=body)
    assert unsigned.status_code == 401
    forged = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sign("wrong", body)})
    assert forged.status_code == 401
    signed = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sign("hook-secret", body)})
    assert signed.status_code == 200
    reply = signed.json()
    assert (reply["accepted"], reply["rejected"]) == (1, 1)
    assert reply["results"][1]["reason"].startswith("posts[1].text")
    (post,) = stack.stored()
    assert (post.id, post.tenant, post.channel, post.source) == ("f1", "city-a", "webhook", "forms")
    status = stack.store.get("city-a", source.id).status
    assert (status.accepted, status.rejected, status.skipped) == (1, 1, 1)

    again = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sign("hook-secret", body)})
    assert again.json()["duplicates"] == 1
    assert httpx.post(f"{stack.webhook_url}/nope", content=body,
                      headers={SIGNATURE_HEADER: sign("hook-secret", body)}).status_code == 404
    bad = b"{not json"
    assert httpx.post(url, content=bad, headers={SIGNATURE_HEADER: sign("hook-secret", bad)}).status_code == 400
    stack.store.set_state("city-a", source.id, "paused")
    paused = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sign("hook-secret", body)})
    assert paused.status_code == 429 and paused.headers["Retry-After"] == "5"


def test_sources_and_cursors_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    store = SourceStore(path)
    source = store.create(ingestion_pb2.SourceSpec(tenant="t", name="n", kind="rss", url="https://x/feed"))
    store.record(source.id, PollOutcome(accepted=2), {"etag": "v9"}, 100.0)
    store.close()
    reopened = SourceStore(path)
    config, cursor, state = reopened.config(source.id)
    assert (config.url, cursor, state) == ("https://x/feed", {"etag": "v9"}, "active")
    assert reopened.get("t", source.id).status.accepted == 2
    reopened.close()


def test_a_bluesky_source_is_a_live_subscription_that_reconnects_and_repeats_nothing(
    stack: Stack, jetstream_server: JetstreamServer
) -> None:
    stack.spool.max_pending = 100
    jetstream_server.events = [commit(5000, "k1", "Bus 12 never came"), commit(5001, "k2", "Line 3 is late")]
    jetstream_server.hang_up = 1  # the first connection drops right after its replay
    source = create(stack, tenant="city-a", name="sky", kind="bluesky", url=jetstream_server.url,
                    params={"checkpoint_s": "0.2"})
    assert stack.store.due(now=1e12) == []  # never polled: followed
    try:
        assert stack.scheduler.follow_subscriptions() == {source.id}
        wait_until(lambda: jetstream_server.connected() == 1)  # reconnected after the drop
        assert "cursor=5001" in jetstream_server.paths[1]  # from the checkpoint, which Jetstream replays
        jetstream_server.push(commit(5002, "k3", "Thanks for the new shelter"))
        jetstream_server.push(commit(5003, "k1", "", "delete"))  # its author deletes the first post
        wait_until(lambda: json.loads(stack.store.get("city-a", source.id).status.cursor).get("time_us") == "5003")
    finally:
        stack.store.set_state("city-a", source.id, "paused")
        assert stack.scheduler.follow_subscriptions() == set()
    status = stack.store.get("city-a", source.id).status
    assert (status.accepted, status.duplicates, status.deleted, status.errors) == (3, 0, 1, 1)
    assert status.last_error == ""  # the connection came back
    rows = stack.spool._db.execute("SELECT post_id, payload, deleted_at IS NOT NULL FROM posts ORDER BY seq").fetchall()
    assert [(post_id.rsplit("/", 1)[1], gone) for post_id, _, gone in rows] == [("k1", 1), ("k2", 0), ("k3", 0)]
    assert post_pb2.Post.FromString(rows[0][1]).text == ""  # only the tombstone is left
    assert [p.text for p in stack.stored()] == ["Line 3 is late", "Thanks for the new shelter"]


def test_source_parameters_a_connector_cannot_use_are_refused(stack: Stack) -> None:
    for kind, params, field in [("open311", {"timezone": "Pacific Time"}, "spec.params.timezone"),
                                ("bluesky", {"checkpoint_s": "soon"}, "spec.params.checkpoint_s"),
                                ("reddit", {"subreddit": "x", "recheck_hours": "-1"}, "spec.params.recheck_hours")]:
        with pytest.raises(grpc.RpcError) as error:
            create(stack, tenant="t", name=f"n-{kind}", kind=kind, url="https://x.example", params=params)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (error.value.details() or "").startswith(field)
