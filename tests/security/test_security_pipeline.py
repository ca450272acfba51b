"""With authentication on, the services' own calls carry the service credential: posts ingested by a
forwarder holding a `service` key reach search and alerting processes that ask for tokens, and a
forwarder holding a tenant's key is refused IndexPosts and keeps the posts pending."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from civic.listening.v1 import post_pb2, search_pb2, search_pb2_grpc
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from services.ingestion.forwarder import Forwarder
from services.ingestion.service import Ingestion
from services.ingestion.spool import SqliteSpool
from tests.fixtures.security import Credentials, make_credentials

pytestmark = pytest.mark.slow


@dataclass
class Downstream:
    settings: Settings
    credentials: Credentials
    service_key: str


@pytest.fixture
def downstream(elasticsearch_url: str, inference_target: str, tmp_path: Path) -> Iterator[Downstream]:
    """Search and alerting processes with authentication on, on free ports."""
    credentials = make_credentials(tmp_path)
    service_key = credentials.api_key("", "service")
    search_port, alerting_port = free_port(), free_port()
    env = {
        "ES_URL": elasticsearch_url,
        "CIVIC_INDEX_PREFIX": f"test-secure-{uuid.uuid4().hex[:8]}",
        "CIVIC_ES_REFRESH_ON_INDEX": "true",
        "CIVIC_SEARCH_PORT": str(search_port),
        "CIVIC_ALERTING_PORT": str(alerting_port),
        "CIVIC_ALERTING_STATE_PATH": str(tmp_path / "alerting.sqlite3"),
        "CIVIC_ALERTS_INDEX_PREFIX": "",
        "CIVIC_INFERENCE_TARGET": inference_target,
        "CIVIC_AUTH_KEYS_FILE": str(credentials.keys_file),
        "CIVIC_AUTH_TOKEN": service_key,
        "CIVIC_AUDIT_INDEX": "",
    }
    processes = [
        spawn(["services.search"], env, tmp_path / "search.log"),
        spawn(["services.alerting"], env, tmp_path / "alerting.log"),
    ]
    try:
        for process, port in zip(processes, (search_port, alerting_port), strict=True):
            wait_healthy(f"127.0.0.1:{port}", 60, process=process)
        settings = Settings(
            spool_path=tmp_path / "spool.sqlite3", inference_target=inference_target,
            search_target=f"127.0.0.1:{search_port}", alerting_target=f"127.0.0.1:{alerting_port}",
            forward_batch_size=8,
        )
        yield Downstream(settings, credentials, service_key)
    finally:
        for process in processes:
            stop_pid(process.pid)


def post(tenant: str, post_id: str, text: str) -> post_pb2.Post:
    made = post_pb2.Post(id=post_id, tenant=tenant, channel="webhook", text=text)
    made.created_at.FromDatetime(datetime.now(UTC) - timedelta(minutes=5))
    return made


def forward(settings: Settings, posts: list[post_pb2.Post], wait_s: float) -> tuple[int, int, str]:
    """(pending, forwarded, last error) after a forwarder with settings' token ran for up to wait_s."""
    spool = SqliteSpool(settings.spool_path, settings.spool_max_pending)
    forwarder = Forwarder(settings, spool)
    ingestion = Ingestion(settings, spool, last_error=forwarder.last_error)
    forwarder.start()
    try:
        assert ingestion.ingest(posts).accepted == len(posts)
        deadline = time.monotonic() + wait_s
        while (stats := ingestion.stats()).pending and time.monotonic() < deadline:
            if stats.last_error:
                break
            time.sleep(0.3)
        return stats.pending, stats.forwarded, stats.last_error
    finally:
        forwarder.stop()
        spool.close()


def test_the_service_key_carries_posts_through_secured_services(downstream: Downstream) -> None:
    tenant = f"secure-{uuid.uuid4().hex[:6]}"
    settings = downstream.settings.model_copy(update={"auth_token": downstream.service_key})
    pending, forwarded, error = forward(settings, [post(tenant, "leak", "Water leak on Birch Road")], 180)
    assert (pending, forwarded, error) == (0, 1, "")
    reader = Settings(auth_token=downstream.credentials.api_key(tenant, "reader"))
    with channel(downstream.settings.search_target, reader) as chan:
        stub = search_pb2_grpc.SearchServiceStub(chan)
        hits = stub.Search(search_pb2.SearchRequest(query="leak"), timeout=30).hits
        assert [(h.post.post.tenant, h.post.post.id) for h in hits] == [(tenant, "leak")]
        # Search embeds the query through inference with its own service key.
        semantic = stub.SemanticSearch(search_pb2.SemanticSearchRequest(text="a burst water pipe"), timeout=60)
        assert [h.post.post.id for h in semantic.hits] == ["leak"]


def test_a_tenant_key_cannot_index_posts_for_the_pipeline(downstream: Downstream, tmp_path: Path) -> None:
    tenant = f"secure-{uuid.uuid4().hex[:6]}"
    tenant_admin = downstream.credentials.api_key(tenant, "admin")
    settings = downstream.settings.model_copy(update={"auth_token": tenant_admin,
                                                      "spool_path": tmp_path / "other-spool.sqlite3"})
    pending, forwarded, error = forward(settings, [post(tenant, "p1", "Pothole on Main Street")], 120)
    assert (pending, forwarded) == (1, 0)
    # The forwarder keeps retrying (the posts wait in the spool until the credential is fixed).
    assert error.startswith("IndexPosts: PERMISSION_DENIED") and "needs the service role" in error, error
    with channel(downstream.settings.search_target, Settings(auth_token=tenant_admin)) as chan, \
            pytest.raises(grpc.RpcError) as refused:
        search_pb2_grpc.SearchServiceStub(chan).IndexPosts(search_pb2.IndexPostsRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
