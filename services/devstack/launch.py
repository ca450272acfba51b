"""Starting, watching and stopping the stack's processes: shared by `civic up` and the tests."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Ports below the kernel's ephemeral range: the ports that other processes get for their outgoing
# connections, or by binding port 0 (Ray starts dozens), come from that range, so a port picked below
# it stays free between choosing it and the server binding it.
_LOWEST_PICK = 20000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nothing listens on, for a server about to be started (tests, benchmarks)."""
    below_ephemeral = list(range(_LOWEST_PICK, _ephemeral_start()))
    random.shuffle(below_ephemeral)
    for port in below_ephemeral:
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # no room below it: the kernel picks
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def is_healthy(target: str, service: str = "", timeout_s: float = 2.0) -> bool:
    """True when the gRPC server at target answers SERVING for service ("" = the whole server)."""
    with grpc.insecure_channel(target) as chan:
        try:
            reply = health_pb2_grpc.HealthStub(chan).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def wait_healthy(
    target: str, timeout_s: float, service: str = "", process: subprocess.Popen[bytes] | None = None
) -> None:
    """Waits for SERVING; fails early, with the reason, if the process dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {target} exited with code {process.returncode}")
        if is_healthy(target, service):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{target} not healthy after {timeout_s:.0f}s")


def spawn(
    args: Sequence[str], env: Mapping[str, str], log_path: Path, python_module: bool = True
) -> subprocess.Popen[bytes]:
    """Starts a detached process (own session, so signals to the caller do not reach it)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", *args] if python_module else list(args)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, timeout_s: float = 20.0, kill_group: bool = True) -> None:
    """SIGTERM (to the process group when it leads one), then SIGKILL after timeout_s."""

    def send(sig: signal.Signals) -> None:
        try:
            if kill_group and os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:
            if not pid_alive(pid):
                return
        time.sleep(0.1)
    send(signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
