"""`civic sources ...` as a user runs it, against a real ingestion gRPC server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.ingestion.server import build_server
from services.ingestion.service import Ingestion
from services.ingestion.sources import SourceStore
from services.ingestion.spool import SqliteSpool

pytestmark = pytest.mark.slow  # every test runs `civic` in its own process

CIVIC = str(Path(sys.executable).with_name("civic"))


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    settings = Settings(spool_path=tmp_path / "spool.sqlite3")
    spool, store = SqliteSpool(settings.spool_path, 100), SourceStore(settings.spool_path)
    server = build_server(settings, Ingestion(settings, spool), port=0, sources=store).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(0)
    store.close()
    spool.close()


def civic(target: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVIC, "sources", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CIVIC_INGESTION_TARGET": target, "COLUMNS": "200", **env})


def test_create_list_pause_resume_status_delete(target: str) -> None:
    created = civic(target, "create", "-t", "city-a", "newsroom", "--kind", "mastodon", "--url",
                    "https://social.example", "--param", "hashtag=potholes", "--secret-env", "MASTO_TOKEN",
                    MASTO_TOKEN="tok-12345")
    assert created.returncode == 0, created.stderr
    assert "secret: yes" in created.stdout and "tok-12345" not in created.stdout
    source_id = created.stdout.split("id=")[1].split()[0]
    listed = civic(target, "list", "-t", "city-a")
    assert source_id in listed.stdout and "active" in listed.stdout
    assert "paused" in civic(target, "pause", "-t", "city-a", source_id).stdout
    assert "active" in civic(target, "resume", "-t", "city-a", source_id).stdout
    status = civic(target, "status", "-t", "city-a", source_id)
    assert "last polled: never" in status.stdout and '"hashtag": "potholes"' in status.stdout
    assert civic(target, "delete", "-t", "city-a", source_id).returncode == 0
    assert "no sources" in civic(target, "list", "-t", "city-a").stdout


def test_errors_are_one_line_and_exit_one(target: str) -> None:
    bad = civic(target, "create", "-t", "city-a", "x", "--kind", "twitter", "--url", "https://x")
    assert bad.returncode == 1 and "INVALID_ARGUMENT: spec.kind" in bad.stderr
    missing = civic(target, "status", "-t", "city-a", "nope")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    unset = civic(target, "create", "-t", "city-a", "x", "--kind", "rss", "--url", "https://x",
                  "--secret-env", "CIVIC_TEST_UNSET_VAR")
    assert unset.returncode == 1 and "not set" in unset.stderr
