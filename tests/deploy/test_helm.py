"""The Helm chart, proven offline: lint, schema validation of every rendered manifest (Kubernetes
OpenAPI and the CRDs of KubeRay and ECK), and the properties a platform team relies on."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.common.settings import Settings
from tests.fixtures.helm import CHART_DIR, PROFILES, REPO_ROOT, RenderChart, by_kind, named, pod_specs, run_helm

# The newest Kubernetes minor the bundled helm client targets, and the chart's oldest supported one.
KUBERNETES_VERSIONS = ("1.35.0", "1.29.0")
CRD_FILES = {
    ("ray.io/v1", "RayService"): "kuberay-ray.io_rayservices.yaml",
    ("elasticsearch.k8s.elastic.co/v1", "Elasticsearch"): "eck-elasticsearch.k8s.elastic.co_elasticsearches.yaml",
}
SERVICES = {"ingestion": 50051, "search": 50052, "alerting": 50053}
GPU = "nvidia.com/gpu"


def worker_groups(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return named(docs, "RayService", "inference")["spec"]["rayClusterConfig"]["workerGroupSpecs"]


def serve_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(named(docs, "RayService", "inference")["spec"]["serveConfigV2"])
    return config


def pruned_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would silently drop: absent from a structural schema that does not
    preserve unknown fields (a misspelt or misplaced key in a custom resource)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        if "properties" in schema:
            pruned = []
            for key, item in value.items():
                if key in schema["properties"]:
                    pruned += pruned_fields(item, schema["properties"][key], f"{path}.{key}")
                elif key not in ("apiVersion", "kind", "metadata") or path:
                    pruned.append(f"{path}.{key}")
            return pruned
        if isinstance(schema.get("additionalProperties"), dict):
            return [f for key, item in value.items()
                    for f in pruned_fields(item, schema["additionalProperties"], f"{path}.{key}")]
    if isinstance(value, list) and "items" in schema:
        return [f for index, item in enumerate(value) for f in pruned_fields(item, schema["items"], f"{path}[{index}]")]
    return []


@pytest.fixture(scope="module")
def crd_schemas(crd_schemas_dir: Path) -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """A validator per custom resource kind, from the openAPIV3Schema of the served CRD version."""
    schemas = {}
    for (api_version, kind), file_name in CRD_FILES.items():
        crd = yaml.load((crd_schemas_dir / file_name).read_text(), Loader=yaml.CSafeLoader)
        version = api_version.split("/")[1]
        (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
        schemas[(api_version, kind)] = jsonschema.Draft7Validator(served["schema"]["openAPIV3Schema"])
    return schemas


# --- lint and schemas ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_lint_strict(helm_binary: Path, profile: str) -> None:
    args = ["lint", "--strict", str(CHART_DIR)]
    for values_file in PROFILES[profile]:
        args += ["-f", str(values_file)]
    result = run_helm(helm_binary, *args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", PROFILES)
def test_manifests_match_kubernetes_and_crd_schemas(
    render_chart: RenderChart, crd_schemas: dict[tuple[str, str], jsonschema.Draft7Validator], profile: str
) -> None:
    docs = render_chart(*PROFILES[profile])
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in crd_schemas:
            crd_schemas[key].validate(doc)
            assert not pruned_fields(doc, crd_schemas[key].schema), f"{doc['kind']}: unknown fields"
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for {version}: {exc.message}")


def test_a_crd_schema_rejects_a_broken_custom_resource(
    render_chart: RenderChart, crd_schemas: dict[tuple[str, str], jsonschema.Draft7Validator]
) -> None:
    """The CRD check has teeth: a missing required field and a misspelt one are both caught."""
    rayservice = named(render_chart(*PROFILES["gpu"]), "RayService", "inference")
    del rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"]
    validator = crd_schemas[("ray.io/v1", "RayService")]
    with pytest.raises(jsonschema.ValidationError, match="groupName"):
        validator.validate(rayservice)
    rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartparams"] = {}
    assert pruned_fields(rayservice, validator.schema) == [".spec.rayClusterConfig.headGroupSpec.rayStartparams"]


def test_bad_values_are_rejected_with_the_field_named(helm_binary: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "securityContext": {"readOnlyRootFilesystem": False},
                "alerting": {"replicas": 0},
                "elasticsearch": {"mode": "opensearch"},
                "inference": {"gpu": {"enabled": "yes"}},
                "config": {"extraEnv": {"ES_URL": "http://elsewhere:9200"}},
                "unknownKey": 1,
            }
        )
    )
    result = run_helm(helm_binary, "template", "civic", str(CHART_DIR), "-f", str(bad))
    assert result.returncode != 0
    for field in (
        "/securityContext/readOnlyRootFilesystem",
        "/alerting/replicas",
        "/elasticsearch/mode",
        "/inference/gpu/enabled",
        "invalid propertyName 'ES_URL'",
        "'unknownKey' not allowed",
    ):
        assert field in result.stderr, f"{field} not named in: {result.stderr}"


def test_inconsistent_bounds_fail_with_a_clear_message(helm_binary: Path) -> None:
    result = run_helm(
        helm_binary, "template", "civic", str(CHART_DIR),
        "--set", "inference.worker.minReplicas=3", "--set", "inference.worker.maxReplicas=2",
    )
    assert result.returncode != 0
    assert "inference.worker: need minReplicas (3) <= replicas (1) <= maxReplicas (2)" in result.stderr


# --- security, probes, state ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_every_container_is_hardened_and_bounded(render_chart: RenderChart, profile: str) -> None:
    specs = list(pod_specs(render_chart(*PROFILES[profile])))
    assert len(specs) >= 5
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], name
            # A read-only root needs a writable /tmp.
            assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}, name


def test_grpc_services_have_native_grpc_probes_and_their_own_identity(render_chart: RenderChart) -> None:
    docs = render_chart()
    for service, port in SERVICES.items():
        kind = "StatefulSet" if service == "ingestion" else "Deployment"
        workload = named(docs, kind, service)
        spec = workload["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["command"] == ["python", "-m", f"services.{service}"]
        assert container["ports"] == [{"name": "grpc", "containerPort": port, "protocol": "TCP"}]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (service, probe)
        assert spec["serviceAccountName"] == named(docs, "ServiceAccount", service)["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False
        assert named(docs, "Service", service)["spec"]["ports"][0]["port"] == port


def test_state_lives_on_claims_with_one_writer(render_chart: RenderChart) -> None:
    docs = render_chart(*PROFILES["production"])
    minimal = render_chart(*PROFILES["minimal"])  # alerting on its SQLite volume (production: PostgreSQL)
    ingestion = named(docs, "StatefulSet", "ingestion")
    (claim,) = ingestion["spec"]["volumeClaimTemplates"]
    mounts = ingestion["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    env = {e["name"]: e.get("value") for e in ingestion["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"name": claim["metadata"]["name"], "mountPath": "/var/lib/civic"} in mounts
    assert env["CIVIC_SPOOL_PATH"] == "/var/lib/civic/spool.sqlite3"
    assert ingestion["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"

    alerting = named(minimal, "Deployment", "alerting")
    assert alerting["spec"]["replicas"] == 1
    assert alerting["spec"]["strategy"] == {"type": "Recreate"}
    claim_name = named(minimal, "PersistentVolumeClaim", "alerting-data")["metadata"]["name"]
    volumes = alerting["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": claim_name}} in volumes
    assert not [doc for doc in by_kind(minimal, "HorizontalPodAutoscaler") if "alerting" in doc["metadata"]["name"]]


def test_production_scales_search_and_protects_it_from_disruption(render_chart: RenderChart) -> None:
    docs = render_chart(*PROFILES["production"])
    hpa = named(docs, "HorizontalPodAutoscaler", "search")
    assert hpa["spec"]["scaleTargetRef"]["name"] == named(docs, "Deployment", "search")["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert "replicas" not in named(docs, "Deployment", "search")["spec"]  # the HPA owns it
    assert named(docs, "PodDisruptionBudget", "search")["spec"]["minAvailable"] == 2
    assert named(docs, "PodDisruptionBudget", "ingestion")["spec"]["minAvailable"] == 1


def test_secrets_are_referenced_never_inlined(render_chart: RenderChart) -> None:
    for profile in ("gpu", "production"):
        docs = render_chart(*PROFILES[profile])
        assert not by_kind(docs, "Secret")
        for name, spec in pod_specs(docs):
            if "otel-collector" in name or "gateway" in name:  # neither reaches Elasticsearch
                continue
            env = {e["name"]: e for e in spec["containers"][0]["env"]}
            assert "secretKeyRef" in env["ES_PASSWORD"]["valueFrom"], (profile, name)
        config = named(docs, "ConfigMap", "config")["data"]
        assert not {"ES_PASSWORD", "ES_API_KEY"} & set(config)
    gpu_search = named(render_chart(*PROFILES["gpu"]), "Deployment", "search")["spec"]["template"]["spec"]
    assert {"name": "es-ca", "secret": {"secretName": "civic-elasticsearch-ca",
                                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in gpu_search["volumes"]


def test_config_map_holds_only_real_settings(render_chart: RenderChart) -> None:
    known = {f"CIVIC_{name.upper()}" for name in Settings.model_fields}
    known |= {str(field.validation_alias) for field in Settings.model_fields.values() if field.validation_alias}
    for profile in PROFILES:
        data = named(render_chart(*PROFILES[profile]), "ConfigMap", "config")["data"]
        unknown = {key for key in data if not key.startswith("OTEL_")} - known
        assert not unknown, f"{profile}: not settings of services/common/settings.py: {unknown}"
        assert data["CIVIC_BIND_HOST"] == "0.0.0.0"
        for name, spec in pod_specs(render_chart(*PROFILES[profile])):
            env = {e["name"] for container in spec["containers"] for e in container.get("env", [])}
            unknown = {key for key in env if key.startswith(("CIVIC_", "ES_"))} - known
            assert not unknown, f"{profile} {name}: not settings of services/common/settings.py: {unknown}"


# --- inference cluster ---------------------------------------------------------------------------


def test_gpu_profile_requests_gpus_on_gpu_nodes(render_chart: RenderChart) -> None:
    docs = render_chart(*PROFILES["gpu"])
    (group,) = worker_groups(docs)
    (container,) = group["template"]["spec"]["containers"]
    assert container["resources"]["limits"][GPU] == 1
    assert container["resources"]["requests"][GPU] == 1
    assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in group["template"]["spec"]["tolerations"]
    assert group["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 4)
    cluster = named(docs, "RayService", "inference")["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    (model,) = serve_config(docs)["applications"][0]["deployments"]
    assert model["ray_actor_options"]["num_gpus"] == 1
    assert model["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64}
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert GPU not in head["resources"]["limits"]


@pytest.mark.parametrize("profile", ["default", "minimal", "production"])
def test_cpu_profiles_need_no_gpu(render_chart: RenderChart, profile: str) -> None:
    docs = render_chart(*PROFILES[profile])
    assert GPU not in yaml.safe_dump(docs)
    (model,) = serve_config(docs)["applications"][0]["deployments"]
    assert model["ray_actor_options"]["num_gpus"] == 0


def test_ray_nodes_have_writable_scratch_and_shared_memory(render_chart: RenderChart) -> None:
    for name, spec in pod_specs(render_chart(*PROFILES["gpu"])):
        if "RayService" not in name:
            continue
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["dshm"]["emptyDir"]["medium"] == "Memory", name
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["CIVIC_MODEL_CACHE_DIR"] == "/opt/civic/models"
        assert env["HF_HOME"].startswith("/tmp/")


def test_serve_config_matches_the_inference_application(render_chart: RenderChart) -> None:
    """The RayService deploys what inference/app.py really defines, on the port clients dial."""
    docs = render_chart()
    config = serve_config(docs)
    (application,) = config["applications"]
    module_name, attribute = application["import_path"].split(":")
    source = ast.parse((REPO_ROOT / Path(*module_name.split("."))).with_suffix(".py").read_text())
    top_level = {
        target.id
        for node in source.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert attribute in top_level, f"{application['import_path']}: no top-level {attribute}"
    servicers = next(
        ast.literal_eval(node.value)
        for node in source.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "GRPC_SERVICER_FUNCTIONS" for t in node.targets)
    )
    assert config["grpc_options"]["grpc_servicer_functions"] == servicers
    for path in servicers:
        module, function = path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), function)), path
    assert {d["name"] for d in application["deployments"]} <= {
        node.value for node in ast.walk(source) if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    port = config["grpc_options"]["port"]
    service = named(docs, "RayService", "inference")["spec"]["serveService"]
    assert service["spec"]["ports"][0]["port"] == port
    target = named(docs, "ConfigMap", "config")["data"]["CIVIC_INFERENCE_TARGET"]
    assert target == f"{service['metadata']['name']}:{port}"


# --- network ---------------------------------------------------------------------------------------


def egress_ports_to(policy: dict[str, Any], component: str) -> set[int]:
    ports: set[int] = set()
    for rule in policy["spec"]["egress"]:
        selectors = [peer.get("podSelector", {}).get("matchLabels", {}) for peer in rule.get("to", [])]
        if any(labels.get("app.kubernetes.io/component") == component for labels in selectors):
            ports |= {port["port"] for port in rule.get("ports", [])}
    return ports


def test_network_policies_allow_only_the_data_flow(render_chart: RenderChart) -> None:
    docs = render_chart(*PROFILES["production"])
    policies = {doc["metadata"]["name"].removeprefix("civic-civic-listening-"): doc
                for doc in by_kind(docs, "NetworkPolicy")}
    assert set(policies) == {*SERVICES, "inference", "elasticsearch", "otel-collector", "gateway"}
    for policy in policies.values():
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert egress_ports_to(policies["ingestion"], "inference") == {9000}
    assert egress_ports_to(policies["ingestion"], "search") == {50052}
    assert egress_ports_to(policies["ingestion"], "alerting") == {50053}
    assert egress_ports_to(policies["search"], "elasticsearch") == {9200}
    assert egress_ports_to(policies["search"], "alerting") == set()
    assert egress_ports_to(policies["alerting"], "inference") == set()
    assert egress_ports_to(policies["alerting"], "elasticsearch") == {9200}  # the alerts index
    assert egress_ports_to(policies["alerting"], "search") == set()
    for component in (*SERVICES, "inference", "gateway"):
        assert egress_ports_to(policies[component], "otel-collector") == {4317}
    assert {c: egress_ports_to(policies["gateway"], c) for c in (*SERVICES, "inference", "elasticsearch")} == {
        **{service: {port} for service, port in SERVICES.items()}, "inference": set(), "elasticsearch": set()}
    for service in SERVICES:
        peers = [peer for rule in policies[service]["spec"]["ingress"] for peer in rule.get("from", [])]
        assert {"podSelector": {"matchLabels": gateway_selector(docs)}} in peers, service


def gateway_selector(docs: list[dict[str, Any]]) -> dict[str, str]:
    selector: dict[str, str] = named(docs, "Deployment", "gateway")["spec"]["selector"]["matchLabels"]
    return selector


def test_the_dashboard_gateway_serves_http_with_probes_and_an_optional_ingress(
    render_chart: RenderChart, tmp_path: Path
) -> None:
    docs = render_chart()
    gateway = named(docs, "Deployment", "gateway")
    spec = gateway["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", "services.gateway"]
    assert container["ports"] == [{"name": "http", "containerPort": 8088, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    assert env["CIVIC_GATEWAY_PORT"]["value"] == "8088"
    assert not [e for e in env.values() if "valueFrom" in e], "the gateway holds no secret"
    assert named(docs, "Service", "gateway")["spec"]["ports"][0]["port"] == 8088
    assert not by_kind(docs, "Ingress")

    values = tmp_path / "ingress.yaml"
    values.write_text(yaml.safe_dump({"gateway": {
        "tenants": ["city-transit", "passport-office"],
        "ingress": {"enabled": True, "className": "nginx", "host": "listening.city.example",
                    "tlsSecretName": "dash-tls"},
    }}))
    docs = render_chart(values)
    (ingress,) = by_kind(docs, "Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": ["listening.city.example"], "secretName": "dash-tls"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": named(docs, "Service", "gateway")["metadata"]["name"], "port": {"name": "http"}}
    env = {e["name"]: e["value"] for e in named(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
           ["containers"][0]["env"] if "value" in e}
    assert env["CIVIC_GATEWAY_TENANTS"] == "city-transit,passport-office"
