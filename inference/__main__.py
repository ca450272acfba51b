"""`python -m inference`: starts Ray (or joins a cluster), serves the InferenceService, stops cleanly.

Ray reads most of its tuning from the environment when it is imported, so the environment is set up
before ray is imported, and only here: the application module itself stays free of process concerns.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from services.common import telemetry
from services.common.settings import Settings, get_settings

log = logging.getLogger("inference")

APP_NAME = "inference"
# Ray's own defaults: a small object store (requests are small) and no dashboard (~1.2 GB saved).
OBJECT_STORE_BYTES = 100 * 1024 * 1024
LOCAL_CPUS = 2
_PR_SET_PDEATHSIG = 1

_RAY_ENVIRONMENT = {
    # The first local ray.init would otherwise turn token auth on for every later Ray command.
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray lowers workers' priority by default; the model replica is the hot path here.
    "RAY_worker_niceness": "0",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    # ...but without direct ingress, which opens a port per replica and stretches the ingress's
    # shutdown drain to 35 s; every call comes through the proxy anyway.
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    "RAY_SERVE_PROXY_GRACEFUL_SHUTDOWN_TIMEOUT_S": "0.5",
}


def _prepare_environment(settings: Settings) -> None:
    for name, value in _RAY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if settings.ray_address == "local":
        os.environ.pop("RAY_ADDRESS", None)


def _private_temp_dir(settings: Settings) -> Path | None:
    """A fresh directory for a private Ray's files; None when joining a cluster."""
    if settings.ray_address != "local":
        return None
    # Ray's socket paths must stay under the 107-byte limit of Unix sockets: keep the root short.
    return Path(tempfile.mkdtemp(prefix="civray-", dir="/tmp"))


def _start_ray(settings: Settings, temp_dir: Path | None) -> None:
    """Starts a private single-node Ray in temp_dir, or joins settings.ray_address."""
    import ray

    if temp_dir is None:
        ray.init(address=settings.ray_address, log_to_driver=False)
        return
    ray.init(
        address="local",
        num_cpus=LOCAL_CPUS,
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=str(temp_dir),
    )


def _start_serve(settings: Settings) -> None:
    from ray import serve
    from ray.serve.config import gRPCOptions

    from inference.app import GRPC_SERVICER_FUNCTIONS, build_app

    serve.start(
        proxy_location="HeadOnly",
        http_options={"host": "127.0.0.1", "port": settings.inference_http_port},
        grpc_options=gRPCOptions(
            port=settings.inference_port, grpc_servicer_functions=GRPC_SERVICER_FUNCTIONS
        ),
    )
    serve.run(build_app(settings), name=APP_NAME, route_prefix=f"/{APP_NAME}")


def _stop(temp_dir: Path | None) -> None:
    import ray
    from ray import serve

    try:
        if ray.is_initialized():  # serve.shutdown() would otherwise start a Ray of its own
            serve.shutdown()
    finally:
        ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


class _StopRequested(Exception):
    """A stop signal arrived while Serve was still starting."""


def _serve(settings: Settings) -> None:
    _prepare_environment(settings)
    stopping = threading.Event()

    def on_signal(*_: object) -> None:
        first = not stopping.is_set()
        stopping.set()
        if first and not serving:
            raise _StopRequested  # out of serve.run, into the cleanup below

    serving = False
    temp_dir = _private_temp_dir(settings)
    try:
        _start_ray(settings, temp_dir)
        # After ray.init: Ray's core installs a handler that dies on SIGTERM without cleaning up.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        _start_serve(settings)
        serving = True
        log.info("serving InferenceService on gRPC port %d", settings.inference_port)
        while not stopping.wait(0.5):
            pass
        log.info("shutting down")
    except (_StopRequested, SystemExit):  # SystemExit: Ray's SIGTERM handler, inside ray.init
        log.info("stopped before it was ready")
    finally:
        _stop(temp_dir)
        log.info("stopped")


def _die_with_parent() -> None:
    """Asks Linux to send SIGTERM here if the supervisor dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _sweep_own_group() -> None:
    """Stops whatever Ray left in this group: a stop during ray.init orphans its agents."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)


def _supervise(settings: Settings) -> int:
    """Runs the server in a child with its own process group and relays stop signals to it.

    Launchers stop a process by signalling its whole group. Ray's daemons (GCS, raylet) join the
    group of the process that starts them, so a group-wide SIGTERM would kill them under a server
    that still needs them to shut down cleanly. Started one group further down, they are stopped
    by the server itself, in order.
    """
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        _die_with_parent()
        telemetry.setup("inference", settings.log_level)
        code = 0
        try:
            _serve(settings)
        except BaseException:
            log.exception("inference server failed")
            code = 1
        _sweep_own_group()
        os._exit(code)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: os.kill(child, signum))
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    settings = get_settings()
    if os.getpgrp() == os.getpid():
        sys.exit(_supervise(settings))
    telemetry.setup("inference", settings.log_level)
    _serve(settings)


if __name__ == "__main__":
    main()
