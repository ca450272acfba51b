"""The alerts index on the real Elasticsearch of the session: alerts raised while the cluster is
unreachable wait in the store (SQLite, and PostgreSQL: `both_stores`), reach `civic-alerts-<tenant>`
once it is back (after a restart of the service), with their lifecycle, and stay searchable there."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from civic.listening.v1 import alerting_pb2
from services.alerting.es_copy import MAPPINGS
from services.devstack.launch import free_port
from tests.alerting.helpers import HOUR, MONDAY, Running, enriched, rule

pytestmark = pytest.mark.both_stores


def count(es: Elasticsearch, index: str) -> int:
    """Documents in the index; 0 while its shard is still being allocated."""
    try:
        return int(es.count(index=index)["count"])
    except ApiError:
        return 0


def test_alerts_reach_elasticsearch_after_an_outage_and_a_restart(
    start: Callable[..., Running], elasticsearch_url: str, tenant: str
) -> None:
    down = {"es_url": f"http://127.0.0.1:{free_port()}", "alerts_index_prefix": "civic-alerts", "alerting_tick_s": 0.05}
    first = start(**down)
    first.put(rule("holes", "query_match", tenant=tenant, query="pothole", labels={"team": "roads"}))
    posts = [enriched(f"p{h}", MONDAY + h * HOUR, "pothole on 5th", tenant=tenant) for h in range(2)]
    fired = list(first.evaluate(posts).fired)
    first.stub.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(tenant=tenant, alert_id=fired[0].id, by="ana"))
    time.sleep(0.2)
    queued = first.alerting.store.execute("SELECT alert_id FROM es_queue WHERE tenant = ?", (tenant,))
    assert sorted(row[0] for row in queued) == sorted(a.id for a in fired)  # one entry per alert: its latest
    first.close()

    second = start(es_url=elasticsearch_url, alerts_index_prefix="civic-alerts", alerting_tick_s=0.05,
                   es_refresh_on_index=True)
    es = Elasticsearch(elasticsearch_url)
    index = f"civic-alerts-{tenant}"
    deadline = time.monotonic() + 30
    while count(es, index) < 2:
        assert time.monotonic() < deadline, "the queued alerts did not reach Elasticsearch"
        time.sleep(0.1)
    second.stub.AssignAlert(
        alerting_pb2.AssignAlertRequest(tenant=tenant, alert_id=fired[1].id, assignee="roads", by="ben")
    )
    hits: list[dict[str, Any]] = []
    while not hits:
        assert time.monotonic() < deadline, "the assignment did not reach Elasticsearch"
        hits = es.search(index=index, query={"term": {"assignee": "roads"}})["hits"]["hits"]
        time.sleep(0.05)
    while second.alerting.store.execute("SELECT COUNT(*) FROM es_queue WHERE tenant = ?", (tenant,)) != [(0,)]:
        assert time.monotonic() < deadline, "written alerts stayed queued"
        time.sleep(0.05)
    second.close()  # what is in the index stays searchable without the service
    assert hits[0]["_id"] == fired[1].id
    acked = es.get(index=index, id=fired[0].id)["_source"]
    assert (acked["acknowledged_by"], acked["state"], acked["severity"], acked["rule_id"]) == (
        "ana", "firing", "warning", "holes")
    assert acked["fired_at"].startswith(fired[0].fired_at.ToDatetime().strftime("%Y-%m-%dT%H:%M"))
    by_label = es.search(index=index, query={"term": {"labels.team": "roads"}})["hits"]["total"]["value"]
    assert by_label == 2
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict" and mapping["properties"]["labels"] == MAPPINGS["properties"]["labels"]
    factors = {factor["name"]: factor for factor in acked["priority_factors"]}
    assert set(factors) == {factor.name for factor in fired[0].priority_factors}
    assert all(factors[f.name]["reason"] == f.reason and f.reason for f in fired[0].priority_factors)


def test_an_alerts_index_from_an_earlier_release_gains_the_new_fields(
    start: Callable[..., Running], elasticsearch_url: str, tenant: str
) -> None:
    es = Elasticsearch(elasticsearch_url)
    index = f"civic-alerts-{tenant}"
    older = copy.deepcopy(MAPPINGS)
    del older["properties"]["priority_factors"]["properties"]["reason"]
    es.indices.create(index=index, mappings=older)
    running = start(es_url=elasticsearch_url, alerts_index_prefix="civic-alerts", alerting_tick_s=0.05,
                    es_refresh_on_index=True)
    running.put(rule("holes", "query_match", tenant=tenant, query="pothole"))
    fired = list(running.evaluate([enriched("p1", MONDAY, "pothole on 5th", tenant=tenant)]).fired)
    deadline = time.monotonic() + 30
    while count(es, index) < 1:
        assert time.monotonic() < deadline, "the alert did not reach the older index"
        time.sleep(0.1)
    running.close()
    stored = es.get(index=index, id=fired[0].id)["_source"]
    assert [factor["reason"] for factor in stored["priority_factors"]] == [f.reason for f in fired[0].priority_factors]
