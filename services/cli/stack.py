"""The local stack behind `civic up / down / status`: Elasticsearch, Ray Serve, the three services
and the dashboard gateway.

Each component is a separate process with a pid file and a log under one run directory, so that the
stack outlives the CLI call that started it and `civic down` can find it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from services.common.settings import CACHE_DIR, Settings
from services.devstack import launch
from services.devstack.elasticsearch_local import LocalElasticsearch, ensure_installed


def http_healthy(target: str) -> bool:
    """True when the HTTP server at host:port answers 200 on /healthz (the dashboard gateway)."""
    try:
        return httpx.get(f"http://{target}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class Component:
    """A process of the stack, started with `python -m <module>`; gRPC health unless told otherwise."""

    name: str
    module: str
    target: Callable[[Settings], str]
    start_timeout_s: float
    wanted: Callable[[], bool] = lambda: True
    healthy: Callable[[str], bool] = launch.is_healthy

    def wait_healthy(self, target: str, process: subprocess.Popen[bytes]) -> None:
        """Waits for health; fails early, with the reason, if the process dies first."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"process for {target} exited with code {process.returncode}")
            if self.healthy(target):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{target} not healthy after {self.start_timeout_s:.0f}s")


def local_telemetry() -> bool:
    """Traces and metrics go to a local receiver unless the operator named an OTLP endpoint."""
    return not any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


COMPONENTS = [
    Component(
        "telemetry", "services.devstack.otlp_receiver", lambda s: f"127.0.0.1:{s.otlp_receiver_port}", 30.0,
        wanted=local_telemetry,
    ),
    Component("inference", "inference", lambda s: s.inference_target, 420.0),
    Component("search", "services.search", lambda s: s.search_target, 60.0),
    Component("alerting", "services.alerting", lambda s: s.alerting_target, 60.0),
    Component("ingestion", "services.ingestion", lambda s: s.ingestion_target, 60.0),
    Component("gateway", "services.gateway", lambda s: f"127.0.0.1:{s.gateway_port}", 60.0, healthy=http_healthy),
]


def dashboard_url(settings: Settings, tenant: str = "") -> str:
    """Where a browser on this machine opens the dashboard, with the agency picked when given."""
    return f"http://127.0.0.1:{settings.gateway_port}/" + (f"?tenant={tenant}" if tenant else "")


@dataclass
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    healthy: bool
    address: str
    log: Path | None


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = settings.run_dir
        self.logs = self.run_dir / "logs"

    # --- paths ---------------------------------------------------------------------------------
    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def read_pid(self, name: str) -> int | None:
        try:
            return int(self.pid_file(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def child_env(self) -> dict[str, str]:
        """Where the stack keeps its state unless the operator chose otherwise."""
        data = self.run_dir / "data"
        env = {
            "CIVIC_SPOOL_PATH": str(data / "spool.sqlite3"),
            "CIVIC_ALERTING_STATE_PATH": str(data / "alerting.sqlite3"),
            "ES_URL": self.settings.es_url,
            "CIVIC_WEBHOOK_PORT": str(self.settings.stack_webhook_port),
        }
        if local_telemetry():
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{self.settings.otlp_receiver_port}"
        return {key: os.environ.get(key, value) for key, value in env.items()}

    # --- Elasticsearch -------------------------------------------------------------------------
    def manages_elasticsearch(self) -> bool:
        """Only a loopback ES_URL gets a local server; a real cluster is used as it is."""
        return urlparse(self.settings.es_url).hostname in {"127.0.0.1", "localhost"}

    def local_elasticsearch(self) -> LocalElasticsearch:
        url = urlparse(self.settings.es_url)
        return LocalElasticsearch(
            home=ensure_installed(self.settings.es_version, CACHE_DIR),
            data_dir=self.run_dir / "elasticsearch",
            http_port=url.port or 9200,
            transport_port=(url.port or 9200) + 100,
            heap=self.settings.es_heap,
        )

    # --- lifecycle -----------------------------------------------------------------------------
    def up(self, report: Callable[[str], None]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.manages_elasticsearch():
            es = self.local_elasticsearch()
            if es.is_ready():
                report(f"elasticsearch already answering at {self.settings.es_url}")
            else:
                report(f"starting elasticsearch {self.settings.es_version} at {self.settings.es_url}")
                es.start()
                es.wait_ready(timeout_s=180)
        for component in COMPONENTS:
            if not component.wanted():
                continue
            target = component.target(self.settings)
            pid = self.read_pid(component.name)
            if pid is not None and launch.pid_alive(pid) and component.healthy(target):
                report(f"{component.name} already running (pid {pid}) at {target}")
                continue
            if component.healthy(target):
                raise RuntimeError(f"{target} is taken by a process this stack did not start")
            report(f"starting {component.name} at {target}")
            log = self.logs / f"{component.name}.log"
            process = launch.spawn([component.module], self.child_env(), log)
            self.pid_file(component.name).write_text(str(process.pid))
            try:
                component.wait_healthy(target, process)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{component.name} did not start ({exc}); see {log}") from exc

    def down(self, report: Callable[[str], None]) -> None:
        for component in reversed(COMPONENTS):
            pid = self.read_pid(component.name)
            if pid is None:
                continue
            if launch.pid_alive(pid):
                report(f"stopping {component.name} (pid {pid})")
                launch.stop_pid(pid, timeout_s=30)
            self.pid_file(component.name).unlink(missing_ok=True)
        if self.manages_elasticsearch() and self.local_elasticsearch().pid() is not None:
            report("stopping elasticsearch")
            self.local_elasticsearch().stop()

    def purge(self, report: Callable[[str], None]) -> None:
        """Deletes what a stopped stack kept: spool, alert state, traces and its own Elasticsearch's data
        (the logs stay). A demo loaded again afterwards is evaluated by today's rules from the start."""
        kept = [self.run_dir / "data", self.run_dir / "telemetry"]
        if self.manages_elasticsearch():
            kept.append(self.run_dir / "elasticsearch")
        for path in kept:
            if path.exists():
                report(f"deleting {path}")
                shutil.rmtree(path)

    def status(self) -> list[ComponentStatus]:
        rows = []
        if self.manages_elasticsearch():
            es = self.local_elasticsearch()
            pid = es.pid()
            rows.append(
                ComponentStatus(
                    "elasticsearch", pid, pid is not None and launch.pid_alive(pid), es.is_ready(),
                    self.settings.es_url, es.log_file,
                )
            )
        for component in COMPONENTS:
            pid = self.read_pid(component.name)
            if pid is None and not component.wanted():
                continue
            target = component.target(self.settings)
            rows.append(
                ComponentStatus(
                    component.name, pid, pid is not None and launch.pid_alive(pid),
                    component.healthy(target), target, self.logs / f"{component.name}.log",
                )
            )
        return rows
