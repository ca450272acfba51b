"""`civic trends` and `civic search` against a real search server, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from civic.listening.v1 import search_pb2
from services.common.grpc_server import channel
from services.common.settings import Settings
from services.search.client import connect
from services.search.indexing import Indexer
from services.search.server import build_server
from services.search.service import Searcher
from tests.search.helpers import corpus, tone_corpus

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CIVIC = str(Path(sys.executable).with_name("civic"))


@pytest.fixture(scope="module")
def search_target(elasticsearch_url: str) -> Iterator[str]:
    settings = Settings(es_url=elasticsearch_url)
    es = connect(settings)
    server = build_server(settings, Indexer(es, "civic-posts", refresh=True), Searcher(es, "civic-posts"),
                          port=0).start()
    yield f"127.0.0.1:{server.port}"
    server.stop()
    es.close()


def civic(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIVIC_SEARCH_TARGET": target, "COLUMNS": "140", "NO_COLOR": "1"}
    return subprocess.run([CIVIC, *args], capture_output=True, text=True, timeout=120, cwd=REPO, env=env)


def test_trends_draws_one_bar_per_interval_with_the_sentiment_split(search_target: str, tenant: str) -> None:
    from civic.listening.v1 import search_pb2_grpc

    with channel(search_target, Settings()) as chan:
        reply = search_pb2_grpc.SearchServiceStub(chan).IndexPosts(search_pb2.IndexPostsRequest(posts=corpus(tenant)))
    assert reply.indexed == 5
    result = civic(search_target, "trends", "--tenant", tenant, "--interval", "1h")
    assert result.returncode == 0, result.stderr
    assert f"{tenant}: posts per 1h (5 in all)" in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if line.strip().startswith("2025-11-13 02:00")]
    assert row.split()[-4:] == ["5", "2", "1", "2"] and "█" * 40 in row
    filtered = civic(search_target, "trends", "--tenant", tenant, "--query", "bus", "--from", "2025-11-13",
                     "--to", "2025-11-14", "--interval", "1d")
    assert filtered.returncode == 0, filtered.stderr
    assert "(2 in all)" in filtered.stdout and "2025-11-13 " in filtered.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "5m"], "--interval must be one of 1h, 1d, 1w"),
        (["--from", "last tuesday"], "--from must be an ISO 8601 date or time"),
        (["--query", "(bus"], "INVALID_ARGUMENT: query: unbalanced parenthesis at position 1"),
    ],
)
def test_trends_errors_are_one_line(search_target: str, args: list[str], message: str) -> None:
    result = civic(search_target, "trends", "--tenant", "city", *args)
    assert result.returncode == 1
    assert result.stderr.startswith(f"civic: {message}") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_search_filters_by_tone_and_prints_the_text_as_written(search_target: str, tenant: str) -> None:
    from civic.listening.v1 import search_pb2_grpc
    posts = tone_corpus(tenant)
    clowns = next(post for post in posts if post.post.id == "t6")
    clowns.post.display_text = "Idiots at the permit office\nlost my file, what a bunch of clowns."
    with channel(search_target, Settings()) as chan:
        reply = search_pb2_grpc.SearchServiceStub(chan).IndexPosts(search_pb2.IndexPostsRequest(posts=posts))
    assert reply.indexed == 7
    result = civic(search_target, "search", "", "--tenant", tenant, "--emotion", "anger", "--offensive")
    assert result.returncode == 0, result.stderr
    assert "2 posts match" in result.stdout
    assert "permit office" in result.stdout and "stupid bridge" in result.stdout
    assert "office lost" not in result.stdout, "the author's line break, not the normalized text"
    cells = [[cell.strip() for cell in line.split("│")] for line in result.stdout.splitlines()]
    feelings = [row[4] for row in cells if len(row) > 6 and row[4]]
    assert feelings == ["negative", "anger", "offensive"] * 2, "sentiment, then emotion and offensive"
    joy = civic(search_target, "search", "", "--tenant", tenant, "--emotion", "joy", "--emotion", "sadness")
    assert "2 posts match" in joy.stdout and "playground" in joy.stdout and "library" in joy.stdout
    bad = civic(search_target, "search", "x", "--tenant", tenant, "--emotion", "rage")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "civic: --emotion must be one of anger, joy, optimism, sadness, not 'rage'"


def test_trends_shows_the_tone_of_each_interval(search_target: str, tenant: str) -> None:
    from civic.listening.v1 import search_pb2_grpc
    with channel(search_target, Settings()) as chan:
        search_pb2_grpc.SearchServiceStub(chan).IndexPosts(search_pb2.IndexPostsRequest(posts=tone_corpus(tenant)))
    result = civic(search_target, "trends", "--tenant", tenant, "--interval", "1h", "--tone")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[1]: line.split()[-6:] for line in result.stdout.splitlines()
            if line.strip().startswith("2025-11-13")}
    # posts, anger, joy, optimism, sadness, offensive
    assert rows == {"02:00": ["3", "2", "1", "0", "0", "1"], "03:00": ["4", "1", "0", "1", "1", "1"]}
    assert "off = offensive" in result.stdout
