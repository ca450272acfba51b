"""The chart's security values: authentication on by default with keys and the service token from
Secrets (never inlined), reflection off, TLS from a Secret with probes on the plaintext health port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.helm import CHART_DIR, PROFILES, RenderChart, by_kind, named, pod_specs, run_helm

FULLNAME = "civic-civic-listening"  # release "civic" of chart civic-listening
SERVICES = {"ingestion": 50051, "search": 50052, "alerting": 50053}


def env_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in spec["containers"][0].get("env", [])}


def grpc_pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The service pods and the Ray nodes: every process that serves or calls gRPC."""
    return [(name, spec) for name, spec in pod_specs(docs) if "otel-collector" not in name and "gateway" not in name]


def test_authentication_is_on_by_default_from_secrets_with_reflection_off(render_chart: RenderChart) -> None:
    for profile, files in PROFILES.items():
        docs = render_chart(*files)
        assert not by_kind(docs, "Secret"), profile
        for name, spec in grpc_pods(docs):
            env = env_of(spec)
            assert env["CIVIC_AUTH_KEYS_FILE"]["value"] == "/etc/civic/auth/keys.json", (profile, name)
            token = env["CIVIC_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert token == {"name": f"{FULLNAME}-service-token", "key": "token"}
            assert env["CIVIC_REFLECTION"]["value"] == "false"
            assert {"name": "auth", "secret": {"secretName": f"{FULLNAME}-auth"}} in spec["volumes"], (profile, name)
            mounts = spec["containers"][0]["volumeMounts"]
            assert {"name": "auth", "mountPath": "/etc/civic/auth", "readOnly": True} in mounts
            assert "CIVIC_TLS_CERT_FILE" not in env


def test_tls_from_a_secret_moves_probes_to_the_health_port(render_chart: RenderChart, tmp_path: Path) -> None:
    values = tmp_path / "tls.yaml"
    values.write_text(yaml.safe_dump({"security": {
        "tls": {"enabled": True, "secretName": "civic-grpc-tls", "requireClientCert": True},
        "auth": {"jwksKey": "jwks.json", "jwtIssuer": "https://login.agency.example"},
    }}))
    docs = render_chart(values)
    for service in SERVICES:
        kind = "StatefulSet" if service == "ingestion" else "Deployment"
        spec = named(docs, kind, service)["spec"]["template"]["spec"]
        env = {name: e.get("value") for name, e in env_of(spec).items()}
        assert env["CIVIC_TLS_CERT_FILE"] == "/etc/civic/tls/tls.crt"
        assert env["CIVIC_TLS_REQUIRE_CLIENT_CERT"] == "true"
        assert env["CIVIC_TLS_CLIENT_CERT_FILE"] == "/etc/civic/tls/tls.crt"
        assert env["CIVIC_AUTH_JWKS_FILE"] == "/etc/civic/auth/jwks.json"
        assert env["CIVIC_AUTH_JWT_ISSUER"] == "https://login.agency.example"
        assert env["CIVIC_HEALTH_PORT"] == "50060"
        assert {"name": "tls", "secret": {"secretName": "civic-grpc-tls"}} in spec["volumes"]
        container = spec["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": 50060}, (service, probe)


def test_security_values_are_checked_by_the_schema(helm_binary: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"security": {"auth": {"enabled": "yes", "password": "x"},
                                                "rateLimit": {"perSecond": -1}}}))
    result = run_helm(helm_binary, "template", "civic", str(CHART_DIR), "-f", str(bad))
    assert result.returncode != 0
    for field in ("/security/auth/enabled", "'password' not allowed", "/security/rateLimit/perSecond"):
        assert field in result.stderr, f"{field} not named in: {result.stderr}"
