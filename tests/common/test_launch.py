"""Ports for servers the tests and benchmarks start: free when chosen, and outside the range the
kernel hands out to other processes' connections (where a chosen port could be taken meanwhile)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.devstack import launch
from services.devstack.launch import free_port


def _ephemeral_start() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(port < _ephemeral_start() for port in ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        taken = listener.getsockname()[1]
        launch._handed_out.discard(taken)  # as if another process had bound it
        monkeypatch.setattr(launch.random, "shuffle", lambda ports: ports.sort(key=lambda port: port != taken))
        assert free_port() != taken
