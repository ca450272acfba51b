"""The soak bench's stack: every component its own process on free loopback ports, each one
killable and restartable on the same ports and files, as a supervisor would restart it.

Elasticsearch is a private node (services/devstack) restarted on its own data directory; inference is
`python -m inference` (a private Ray Serve, as `civic up` starts it), whose model replica is killed
alone so that Serve replaces it; search, alerting and ingestion are killed with SIGKILL (no cleanup
runs) and started again, ingestion on the same spool. With several alerting replicas they share a
local PostgreSQL (services/devstack/postgres_local.py) and ingestion's target names them all
(`ipv4:a,b`), so the forwarder's calls go to whichever replica is alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from civic.listening.v1 import inference_pb2, inference_pb2_grpc, post_pb2
from services.common.settings import CACHE_DIR, Settings
from services.devstack.elasticsearch_local import LocalElasticsearch, ensure_installed
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy
from services.devstack.postgres_local import LocalPostgres

INFERENCE_START_S = 420.0
SERVICE_START_S = 120.0
ES_START_S = 240.0
MODEL_REPLICA = b"ray::ServeReplica"
MODEL_DEPLOYMENT = b"ModelServer"


def enrich_answers(target: str, timeout_s: float = 10.0) -> bool:
    """Ray Serve's proxy answers health before the application is deployed: a real Enrich is the test."""
    with grpc.insecure_channel(target) as chan:
        try:
            inference_pb2_grpc.InferenceServiceStub(chan).Enrich(
                inference_pb2.EnrichRequest(posts=[post_pb2.Post(text="ready?")]), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return True


def _wait(condition: Callable[[], bool], limit_s: float, what: str, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {limit_s:.0f}s")
        time.sleep(0.5)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def session_processes(session_id: int) -> list[int]:
    """Live processes of a session: what spawn() started, Ray's daemons and workers included."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class Service:
    """A gRPC server process (`python -m module`), restartable on the same environment and log."""

    name: str
    module: str
    env: dict[str, str]
    log: Path
    target: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = spawn([self.module], self.env, self.log)
        if self.module == "inference":
            _wait(lambda: enrich_answers(self.target), INFERENCE_START_S, self.name, self.process)
        else:
            wait_healthy(self.target, SERVICE_START_S, process=self.process)

    def crash(self) -> None:
        """SIGKILL to the process group: no shutdown hook runs."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_pid(self.process.pid, timeout_s=60)

    def model_replicas(self) -> list[int]:
        """The pids of the inference model's Serve replicas (the ingress's replica excluded)."""
        assert self.process is not None
        return [pid for pid in session_processes(self.process.pid)
                if _cmdline(pid).startswith(MODEL_REPLICA) and MODEL_DEPLOYMENT in _cmdline(pid)]


@dataclass
class Stack:
    """The running components and how to kill and bring back each one."""

    work: Path
    es: LocalElasticsearch
    services: dict[str, Service] = field(default_factory=dict)
    postgres: LocalPostgres | None = None

    @property
    def targets(self) -> dict[str, str]:
        return {name: service.target for name, service in self.services.items()}

    def kill_and_recover(self, component: str) -> str:
        """Kills one component; returns once it serves again. Returns what was done."""
        if component == "inference":
            return self._kill_model_replica()
        if component == "elasticsearch":
            self.es.stop()
            self.es.start()
            self.es.wait_ready(timeout_s=ES_START_S)
            return "stopped and restarted the node on its data directory"
        service = self.services[component]
        service.crash()
        service.start()
        return f"SIGKILL, restarted on port {service.target.rsplit(':', 1)[1]}"

    def _kill_model_replica(self) -> str:
        service = self.services["inference"]
        replicas = service.model_replicas()
        if not replicas:
            raise RuntimeError("no ModelServer replica process found to kill")
        victim = replicas[0]
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: any(pid != victim for pid in service.model_replicas()) and enrich_answers(service.target, 30),
              INFERENCE_START_S, "inference replica", service.process)
        return f"SIGKILL ModelServer replica pid {victim}; Serve started pid {service.model_replicas()[0]}"


def _env(work: Path, es_url: str, ports: dict[str, int], extra: dict[str, str]) -> dict[str, str]:
    """The environment of every component; an alerting replica's own port is set per Service."""
    return {
        "ES_URL": es_url,
        "CIVIC_SPOOL_PATH": str(work / "spool.sqlite3"),
        "CIVIC_ALERTING_STATE_PATH": str(work / "alerting.sqlite3"),
        "CIVIC_WEBHOOK_PORT": "0",
        "CIVIC_RAY_ADDRESS": "local",
        "CIVIC_INFERENCE_HTTP_PORT": str(free_port()),
        **{f"CIVIC_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **{f"CIVIC_{name.upper()}_TARGET": f"127.0.0.1:{port}" for name, port in ports.items()},
        **extra,
    }


@contextlib.contextmanager
def running_stack(
    work: Path, extra_env: dict[str, str], report: Callable[[str], None], alerting_replicas: int = 1
) -> Iterator[Stack]:
    """Elasticsearch, inference, search, alerting and ingestion, in that order; all stopped afterwards.
    Alerting replicas after the first are named alerting-2, alerting-3, ..."""
    settings = Settings()
    es = LocalElasticsearch(home=ensure_installed(settings.es_version, CACHE_DIR), data_dir=work / "es",
                            http_port=free_port(), transport_port=free_port(), heap="1g",
                            cluster_name="civic-soak")
    stack = Stack(work, es)
    try:
        report(f"starting elasticsearch at {es.url}")
        es.start()
        es.wait_ready(timeout_s=ES_START_S)
        ports = {name: free_port() for name in ("inference", "search", "alerting", "ingestion")}
        env = _env(work, es.url, ports, extra_env)
        alerting_ports = [ports["alerting"]] + [free_port() for _ in range(alerting_replicas - 1)]
        if alerting_replicas > 1:
            stack.postgres = LocalPostgres(work / "postgres", free_port())
            stack.postgres.start()
            env["CIVIC_ALERTING_DATABASE_URL"] = stack.postgres.create_database("civic_alerting")
            env["CIVIC_ALERTING_TARGET"] = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in alerting_ports)
            report(f"alerting's shared store: PostgreSQL on 127.0.0.1:{stack.postgres.port}")
        components = [(name, ports[name]) for name in ports if name != "alerting"]
        replica_names = ["alerting"] + [f"alerting-{i}" for i in range(2, alerting_replicas + 1)]
        components[2:2] = list(zip(replica_names, alerting_ports, strict=True))
        for name, port in components:
            module = "inference" if name == "inference" else f"services.{name.split('-')[0]}"
            own_env = {**env, "CIVIC_ALERTING_PORT": str(port)} if module == "services.alerting" else env
            service = Service(name, module, own_env, work / f"{name}.log", f"127.0.0.1:{port}")
            report(f"starting {name} at {service.target}")
            stack.services[name] = service
            service.start()
        yield stack
    finally:
        for service in reversed(stack.services.values()):
            service.stop()
        if stack.postgres is not None:
            stack.postgres.stop()
        es.stop()
