"""Fixtures of the ingestion tests: real search and alerting processes downstream of a forwarder."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.devstack.launch import free_port, spawn, stop_pid, wait_healthy


@pytest.fixture
def downstream(
    elasticsearch_url: str, inference_target: str, tmp_path: Path
) -> Iterator[Settings]:
    """Search and alerting processes on free ports, with their settings for the forwarder."""
    search_port, alerting_port = free_port(), free_port()
    env = {
        "ES_URL": elasticsearch_url,
        "CIVIC_INDEX_PREFIX": f"test-ingest-{uuid.uuid4().hex[:8]}",
        "CIVIC_ES_REFRESH_ON_INDEX": "true",
        "CIVIC_SEARCH_PORT": str(search_port),
        "CIVIC_ALERTING_PORT": str(alerting_port),
        "CIVIC_ALERTING_STATE_PATH": str(tmp_path / "alerting.sqlite3"),
        "CIVIC_INFERENCE_TARGET": inference_target,
    }
    processes = [
        spawn(["services.search"], env, tmp_path / "search.log"),
        spawn(["services.alerting"], env, tmp_path / "alerting.log"),
    ]
    try:
        for process, port in zip(processes, (search_port, alerting_port), strict=True):
            wait_healthy(f"127.0.0.1:{port}", 60, process=process)
        yield Settings(
            spool_path=tmp_path / "spool.sqlite3",
            inference_target=inference_target,
            search_target=f"127.0.0.1:{search_port}",
            alerting_target=f"127.0.0.1:{alerting_port}",
            forward_batch_size=8,
        )
    finally:
        for process in processes:
            stop_pid(process.pid)
