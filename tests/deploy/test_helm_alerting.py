"""The chart's two shapes of alerting: one replica on its SQLite volume (no database), or replicas on an
external PostgreSQL named by a Secret, with RollingUpdate, a PodDisruptionBudget and an HPA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.helm import CHART_DIR, PROFILES, RenderChart, by_kind, named, run_helm

DATABASE = {"alerting.database.urlSecret.name": "civic-alerting-db", "alerting.database.urlSecret.key": "dsn"}


def alerting_docs(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in by_kind(docs, kind) if doc["metadata"]["name"].endswith("-alerting")]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_without_a_database_alerting_is_one_writer_on_its_volume(render_chart: RenderChart) -> None:
    docs = render_chart()
    deployment = named(docs, "Deployment", "alerting")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"]: e for e in container(deployment)["env"]}
    assert env["CIVIC_ALERTING_STATE_PATH"]["value"] == "/var/lib/civic/alerting.sqlite3"
    assert "CIVIC_ALERTING_DATABASE_URL" not in env
    assert named(docs, "PersistentVolumeClaim", "alerting-data")
    assert alerting_docs(docs, "PodDisruptionBudget") == alerting_docs(docs, "HorizontalPodAutoscaler") == []


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("alerting.replicas=2", "alerting.replicas (2) > 1 needs a shared store: set alerting.database.urlSecret.name"),
        ("alerting.autoscaling.enabled=true", "alerting.autoscaling.enabled needs a shared store"),
    ],
)
def test_more_than_one_replica_without_a_database_is_refused(helm_binary: Path, flag: str, message: str) -> None:
    result = run_helm(helm_binary, "template", "civic", str(CHART_DIR), "--set", flag)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_on_a_database_alerting_runs_two_replicas_that_roll(render_chart: RenderChart) -> None:
    docs = render_chart(set_values=DATABASE)
    deployment = named(docs, "Deployment", "alerting")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    env = {e["name"]: e for e in container(deployment)["env"]}
    reference = {"secretKeyRef": {"name": "civic-alerting-db", "key": "dsn"}}
    assert env["CIVIC_ALERTING_DATABASE_URL"] == {"name": "CIVIC_ALERTING_DATABASE_URL", "valueFrom": reference}
    assert "CIVIC_ALERTING_STATE_PATH" not in env
    assert not [doc for doc in by_kind(docs, "PersistentVolumeClaim") if "alerting" in doc["metadata"]["name"]]
    assert "data" not in {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (pdb,) = alerting_docs(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    (policy,) = alerting_docs(docs, "NetworkPolicy")
    assert {"ports": [{"port": 5432, "protocol": "TCP"}]} in policy["spec"]["egress"]


def test_production_autoscales_alerting_on_its_database(render_chart: RenderChart) -> None:
    docs = render_chart(*PROFILES["production"])
    deployment = named(docs, "Deployment", "alerting")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    (hpa,) = alerting_docs(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert alerting_docs(docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1
    secret = container(deployment)["env"]
    assert {"name": "CIVIC_ALERTING_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "civic-alerting-database", "key": "url"}}} in secret


def test_database_peers_narrow_the_egress(render_chart: RenderChart) -> None:
    peers = {"alerting.database.networkPeers[0].ipBlock.cidr": "10.20.0.0/16", "alerting.database.port": "6432"}
    docs = render_chart(set_values={**DATABASE, **peers})
    (policy,) = alerting_docs(docs, "NetworkPolicy")
    assert {"ports": [{"port": 6432, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]} in policy[
        "spec"]["egress"]
