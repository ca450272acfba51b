"""Tenant isolation through every RPC with authentication on: tenant A's credentials cannot read,
count, aggregate, alert on or modify tenant B's posts, rules, alerts, silences, webhooks or sources.
Also the audit log these calls leave in Elasticsearch."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest
from elasticsearch import Elasticsearch

from civic.listening.v1 import alerting_pb2, ingestion_pb2, post_pb2, search_pb2
from tests.fixtures.security import SecuredStack, Stubs
from tests.security.helpers import NOW, enriched

pytestmark = pytest.mark.slow

SECRET_WORD = "zanzibarquux"


@dataclass
class World:
    """Two tenants' data, made through the RPCs with their own (and the service's) credentials."""

    a: str
    b: str
    a_admin: Stubs
    b_alert: alerting_pb2.Alert
    b_silence: alerting_pb2.Silence
    b_source: ingestion_pb2.Source


@pytest.fixture(scope="module")
def world(secured_stack: SecuredStack) -> World:
    a, b = f"city-a-{uuid.uuid4().hex[:6]}", f"city-b-{uuid.uuid4().hex[:6]}"
    service = secured_stack.stubs(secured_stack.token("", "service"))
    posts = [enriched(a, "a-1", "The bus on route 12 is late again")]
    posts += [enriched(b, f"b-{i}", f"The {SECRET_WORD} bus depot flooded, route {i} cancelled") for i in range(3)]
    assert service.search.IndexPosts(search_pb2.IndexPostsRequest(posts=posts), timeout=30).indexed == 4
    b_stubs = secured_stack.as_tenant(b, "admin")
    rule = alerting_pb2.Rule(id="depot", name="depot", kind=alerting_pb2.RULE_KIND_QUERY_MATCH, query=SECRET_WORD,
                             threshold=1, window_seconds=3600)
    b_stubs.alerting.PutRule(alerting_pb2.PutRuleRequest(rule=rule), timeout=10)
    (b_alert,) = service.alerting.EvaluatePosts(alerting_pb2.EvaluatePostsRequest(posts=posts), timeout=10).fired
    silence = alerting_pb2.Silence(matchers=[alerting_pb2.Matcher(name="rule", value="depot")], comment="known",
                                     created_by="dispatcher")
    silence.ends_at.FromDatetime(NOW + timedelta(hours=2))
    b_silence = b_stubs.alerting.CreateSilence(alerting_pb2.CreateSilenceRequest(silence=silence), timeout=10).silence
    b_stubs.alerting.PutWebhook(alerting_pb2.PutWebhookRequest(webhook=alerting_pb2.Webhook(
        id="hook", url="https://b.example/hook", secret="hook-secret-of-city-b")), timeout=10)
    spec = ingestion_pb2.SourceSpec(name="feed", kind="rss", url="https://b.example/feed")
    b_source = b_stubs.ingestion.CreateSource(ingestion_pb2.CreateSourceRequest(spec=spec), timeout=10).source
    assert (b_alert.tenant, b_silence.tenant, b_source.tenant) == (b, b, b)
    return World(a, b, secured_stack.as_tenant(a, "admin"), b_alert, b_silence, b_source)


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[no-any-return, attr-defined]


DENIED = grpc.StatusCode.PERMISSION_DENIED


def test_a_cannot_name_b_as_tenant_in_any_rpc(world: World) -> None:
    s, al, ing, b = world.a_admin.search, world.a_admin.alerting, world.a_admin.ingestion, world.b
    calls: dict[str, Callable[[], Any]] = {
        "Search": lambda: s.Search(search_pb2.SearchRequest(tenant=b), timeout=10),
        "Count": lambda: s.Count(search_pb2.CountRequest(tenant=b), timeout=10),
        "Aggregate": lambda: s.Aggregate(search_pb2.AggregateRequest(
            tenant=b, dimension=search_pb2.AGGREGATE_DIMENSION_CHANNEL), timeout=10),
        "VolumeOverTime": lambda: s.VolumeOverTime(search_pb2.VolumeOverTimeRequest(tenant=b), timeout=10),
        "SemanticSearch": lambda: s.SemanticSearch(search_pb2.SemanticSearchRequest(tenant=b, text="bus"), timeout=10),
        "GetPost": lambda: s.GetPost(search_pb2.GetPostRequest(tenant=b, channel="mastodon", id="b-0"), timeout=10),
        "ListAlerts": lambda: al.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=b), timeout=10),
        "ListRules": lambda: al.ListRules(alerting_pb2.ListRulesRequest(tenant=b), timeout=10),
        "DeleteRule": lambda: al.DeleteRule(alerting_pb2.DeleteRuleRequest(tenant=b, id="depot"), timeout=10),
        "AcknowledgeAlert": lambda: al.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(
            tenant=b, alert_id=world.b_alert.id, by="mallory"), timeout=10),
        "ResolveAlert": lambda: al.ResolveAlert(alerting_pb2.ResolveAlertRequest(
            tenant=b, alert_id=world.b_alert.id, by="mallory"), timeout=10),
        "ListSilences": lambda: al.ListSilences(alerting_pb2.ListSilencesRequest(tenant=b), timeout=10),
        "ExpireSilence": lambda: al.ExpireSilence(alerting_pb2.ExpireSilenceRequest(
            tenant=b, id=world.b_silence.id), timeout=10),
        "ListWebhooks": lambda: al.ListWebhooks(alerting_pb2.ListWebhooksRequest(tenant=b), timeout=10),
        "PutRule": lambda: al.PutRule(alerting_pb2.PutRuleRequest(rule=alerting_pb2.Rule(tenant=b, id="x")),
                                      timeout=10),
        "ListSources": lambda: ing.ListSources(ingestion_pb2.ListSourcesRequest(tenant=b), timeout=10),
        "PauseSource": lambda: ing.PauseSource(ingestion_pb2.PauseSourceRequest(
            tenant=b, id=world.b_source.id), timeout=10),
        "IngestPosts": lambda: ing.IngestPosts(ingestion_pb2.IngestPostsRequest(posts=[
            post_pb2.Post(id="x", channel="mastodon", text="ok"),
            post_pb2.Post(id="y", tenant=b, channel="mastodon", text="planted")]), timeout=10),
        "GetIngestionStats": lambda: ing.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest(tenant=b),
                                                           timeout=10),
    }
    codes = {name: code_of(call) for name, call in calls.items()}
    assert codes == dict.fromkeys(calls, DENIED)


def test_a_sees_only_its_own_posts_through_search_count_aggregate_and_volume(world: World) -> None:
    s = world.a_admin.search
    hits = s.Search(search_pb2.SearchRequest(query="bus"), timeout=10).hits
    assert [(h.post.post.tenant, h.post.post.id) for h in hits] == [(world.a, "a-1")]
    assert s.Search(search_pb2.SearchRequest(query=SECRET_WORD), timeout=10).total == 0
    assert s.Count(search_pb2.CountRequest(), timeout=10).count == 1
    aggregate = s.Aggregate(search_pb2.AggregateRequest(dimension=search_pb2.AGGREGATE_DIMENSION_TERM), timeout=10)
    assert aggregate.total == 1 and SECRET_WORD not in {bucket.key for bucket in aggregate.buckets}
    volume = s.VolumeOverTime(search_pb2.VolumeOverTimeRequest(interval=search_pb2.TIME_INTERVAL_HOUR), timeout=10)
    assert volume.total == 1
    semantic = s.SemanticSearch(search_pb2.SemanticSearchRequest(
        text=f"The {SECRET_WORD} bus depot flooded, route 0 cancelled"), timeout=10)
    assert {h.post.post.tenant for h in semantic.hits} == {world.a}
    assert code_of(lambda: s.GetPost(search_pb2.GetPostRequest(channel="mastodon", id="b-0"), timeout=10)) \
        == grpc.StatusCode.NOT_FOUND


def test_a_cannot_see_or_touch_b_alerts_rules_silences_webhooks_or_sources(world: World) -> None:
    al, ing = world.a_admin.alerting, world.a_admin.ingestion
    assert list(al.ListAlerts(alerting_pb2.ListAlertsRequest(), timeout=10).alerts) == []
    assert list(al.ListRules(alerting_pb2.ListRulesRequest(), timeout=10).rules) == []
    assert list(al.ListSilences(alerting_pb2.ListSilencesRequest(include_expired=True), timeout=10).silences) == []
    assert list(al.ListWebhooks(alerting_pb2.ListWebhooksRequest(), timeout=10).webhooks) == []
    assert list(ing.ListSources(ingestion_pb2.ListSourcesRequest(), timeout=10).sources) == []
    not_found = {
        "ack": lambda: al.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(
            alert_id=world.b_alert.id, by="mallory"), timeout=10),
        "assign": lambda: al.AssignAlert(alerting_pb2.AssignAlertRequest(
            alert_id=world.b_alert.id, assignee="mallory", by="mallory"), timeout=10),
        "expire": lambda: al.ExpireSilence(alerting_pb2.ExpireSilenceRequest(id=world.b_silence.id), timeout=10),
        "delete rule": lambda: al.DeleteRule(alerting_pb2.DeleteRuleRequest(id="depot"), timeout=10),
        "delete webhook": lambda: al.DeleteWebhook(alerting_pb2.DeleteWebhookRequest(id="hook"), timeout=10),
        "pause": lambda: ing.PauseSource(ingestion_pb2.PauseSourceRequest(id=world.b_source.id), timeout=10),
        "status": lambda: ing.GetSourceStatus(ingestion_pb2.GetSourceStatusRequest(id=world.b_source.id), timeout=10),
        "delete source": lambda: ing.DeleteSource(ingestion_pb2.DeleteSourceRequest(id=world.b_source.id), timeout=10),
    }
    for name, call in not_found.items():
        assert code_of(call) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), name


def test_b_data_is_unchanged_after_a_tried_everything(world: World, secured_stack: SecuredStack) -> None:
    test_a_cannot_name_b_as_tenant_in_any_rpc(world)
    test_a_cannot_see_or_touch_b_alerts_rules_silences_webhooks_or_sources(world)
    b = secured_stack.as_tenant(world.b, "admin")
    (alert,) = b.alerting.ListAlerts(alerting_pb2.ListAlertsRequest(), timeout=10).alerts
    assert (alert.acknowledged_by, alert.assignee, alert.resolved_by) == ("", "", "")
    assert [r.id for r in b.alerting.ListRules(alerting_pb2.ListRulesRequest(), timeout=10).rules] == ["depot"]
    (silence,) = b.alerting.ListSilences(alerting_pb2.ListSilencesRequest(), timeout=10).silences
    assert silence.ends_at == world.b_silence.ends_at
    assert [w.id for w in b.alerting.ListWebhooks(alerting_pb2.ListWebhooksRequest(), timeout=10).webhooks] == ["hook"]
    (source,) = b.ingestion.ListSources(ingestion_pb2.ListSourcesRequest(), timeout=10).sources
    assert source.state == ingestion_pb2.SOURCE_STATE_ACTIVE
    assert b.search.Count(search_pb2.CountRequest(query=SECRET_WORD), timeout=10).count == 3


def test_posts_ingested_without_a_tenant_belong_to_the_caller(world: World) -> None:
    post = post_pb2.Post(id="via-ingest", channel="mastodon", text="Streetlight out on Elm street")
    post.created_at.FromDatetime(NOW)
    # Ingestion refuses a post without a tenant: accepted means it was given the caller's.
    reply = world.a_admin.ingestion.IngestPosts(ingestion_pb2.IngestPostsRequest(posts=[post]), timeout=10)
    assert (reply.accepted, reply.rejected) == (1, 0), reply


def test_ingestion_figures_are_the_callers_own(world: World, secured_stack: SecuredStack) -> None:
    def stats(stubs: Stubs) -> ingestion_pb2.GetIngestionStatsResponse:
        return stubs.ingestion.GetIngestionStats(ingestion_pb2.GetIngestionStatsRequest(), timeout=10)

    a_admin, b_ingest = world.a_admin, secured_stack.as_tenant(world.b, "ingest")
    a_before, b_before = stats(a_admin), stats(b_ingest)
    post = post_pb2.Post(id=f"b-stats-{uuid.uuid4().hex[:6]}", channel="mastodon", text="Bins not collected")
    post.created_at.FromDatetime(NOW)
    bad = post_pb2.Post(id="b-stats-bad", channel="mastodon", text="")
    reply = b_ingest.ingestion.IngestPosts(ingestion_pb2.IngestPostsRequest(posts=[post, post, bad]), timeout=10)
    assert (reply.accepted, reply.duplicates, reply.rejected) == (1, 1, 1), reply
    a_after, b_after = stats(a_admin), stats(b_ingest)
    assert (a_after.tenant, b_after.tenant) == (world.a, world.b)
    assert (a_after.accepted, a_after.duplicates, a_after.rejected) == \
        (a_before.accepted, a_before.duplicates, a_before.rejected)
    assert (b_after.accepted - b_before.accepted, b_after.duplicates - b_before.duplicates,
            b_after.rejected - b_before.rejected) == (1, 1, 1)
    assert a_after.last_error == b_after.last_error == ""  # it may name another tenant's post
    everyone = stats(secured_stack.stubs(secured_stack.token("", "service")))
    assert everyone.tenant == "" and everyone.accepted >= a_after.accepted + b_after.accepted


def test_the_audit_log_records_who_did_what_without_secrets(world: World, secured_stack: SecuredStack) -> None:
    reader = secured_stack.as_tenant(world.a, "reader")
    reader.search.Search(search_pb2.SearchRequest(query='"route 12" AND late'), timeout=10)
    assert code_of(lambda: reader.alerting.PutRule(alerting_pb2.PutRuleRequest(rule=alerting_pb2.Rule(id="r")),
                                                   timeout=10)) == DENIED
    es = Elasticsearch(secured_stack.settings.es_url)
    index = secured_stack.settings.audit_index
    deadline = time.monotonic() + 20
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if es.indices.exists(index=index):
            es.indices.refresh(index=index)
            found = es.search(index=index, query={"term": {"tenant": world.a}}, size=200)
            records = [hit["_source"] for hit in found["hits"]["hits"]]
            if any(r["outcome"] == "PERMISSION_DENIED" and r["method"].endswith("/PutRule") for r in records):
                break
        time.sleep(0.3)
    reader_key = secured_stack.token(world.a, "reader")
    search = next(r for r in records if r["method"].endswith("/Search") and r["roles"] == ["reader"])
    assert search["outcome"] == "OK" and search["details"]["query"] == '"route 12" AND late'
    assert search["subject"] == f"key:{reader_key.split('_')[1]}" and search["credential"] == "api-key"
    assert any(r["method"].endswith("/PutRule") and r["outcome"] == "PERMISSION_DENIED" for r in records)
    everything = es.search(index=index, size=1000)["hits"]["hits"]
    dumped = str([hit["_source"] for hit in everything])
    assert reader_key.split("_")[2] not in dumped and "hook-secret-of-city-b" not in dumped
    assert "Streetlight out on Elm" not in dumped  # post text is never audited
    b_changes = {r["_source"]["method"].rsplit("/", 1)[1] for r in everything if r["_source"]["tenant"] == world.b}
    assert {"PutRule", "CreateSilence", "PutWebhook", "CreateSource"} <= b_changes
    es.close()
