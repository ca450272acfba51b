"""`civic failed list|replay` as an operator runs it, against a real ingestion gRPC server whose spool
holds dead letters."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.ingestion.server import build_server
from services.ingestion.service import Ingestion
from services.ingestion.spool import SpoolEntry, SqliteSpool

pytestmark = pytest.mark.slow  # every test runs `civic` in its own process

CIVIC = str(Path(sys.executable).with_name("civic"))


@dataclass
class Served:
    target: str
    spool: SqliteSpool


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    settings = Settings(spool_path=tmp_path / "spool.sqlite3")
    spool = SqliteSpool(settings.spool_path, 100)
    spool.append([SpoolEntry("city-a", "rss", post_id, "", b"") for post_id in ("p1", "p2", "p3")]
                 + [SpoolEntry("city-b", "rss", "b1", "", b"")])
    one, two, three, other = spool.next_batch(10)
    spool.mark_forwarded([one.seq], {two.seq: "IndexPosts: posts[0].post.source: must be at most 1,024 characters",
                                     three.seq: "Enrich: INTERNAL: inference failed (failed 5 times alone while "
                                                "other posts went through)",
                                     other.seq: "Enrich: INTERNAL: inference failed"})
    server = build_server(settings, Ingestion(settings, spool), port=0).start()
    yield Served(f"127.0.0.1:{server.port}", spool)
    server.stop(0)
    spool.close()


def civic(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVIC, "failed", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CIVIC_INGESTION_TARGET": target, "COLUMNS": "250"})


def test_list_shows_each_dead_letter_with_its_reason_and_replay_queues_them_again(served: Served) -> None:
    listed = civic(served.target, "list", "-t", "city-a")
    assert listed.returncode == 0, listed.stderr
    assert "2 dead letters of city-a" in listed.stdout
    assert "p2" in listed.stdout and "must be at most 1,024 characters" in listed.stdout
    assert "p3" in listed.stdout and "failed 5 times alone" in listed.stdout
    assert "b1" not in listed.stdout, "another agency's dead letters"

    replayed = civic(served.target, "replay", "-t", "city-a", "--id", "p3")
    # "left" counts the letters the call matched: p3's.
    assert (replayed.returncode, replayed.stdout.strip()) == (0, "1 posts back in the queue, 0 dead letters left")
    assert served.spool.stats("city-a").pending == 1 and served.spool.stats("city-a").failed == 1
    rest = civic(served.target, "replay", "-t", "city-a")
    assert rest.stdout.strip() == "1 posts back in the queue, 0 dead letters left"
    assert "no dead letters for city-a" in civic(served.target, "list", "-t", "city-a").stdout
    stats = served.spool.stats()
    assert (stats.forwarded, stats.failed, stats.pending) == (1, 1, 2)  # city-b's letter stays


def test_a_bad_request_is_one_line_and_exits_one(served: Served) -> None:
    bad = civic(served.target, "list", "-t", "City A")
    assert bad.returncode == 1 and "INVALID_ARGUMENT: tenant" in bad.stderr
