"""The local Elasticsearch helper: install is idempotent, a node starts, answers and stops cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from services.common.settings import CACHE_DIR, Settings
from services.devstack.elasticsearch_analyzers import LUCENE_ANALYZERS
from services.devstack.elasticsearch_local import LocalElasticsearch, ensure_installed
from services.devstack.launch import free_port, pid_alive

pytestmark = pytest.mark.slow


def test_concurrent_installs_agree_on_one_ready_home() -> None:
    version = Settings().es_version
    homes: list[Path] = []
    workers = [threading.Thread(target=lambda: homes.append(ensure_installed(version, CACHE_DIR))) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(set(homes)) == 1
    assert (homes[0] / "bin" / "elasticsearch").stat().st_mode & 0o111


def test_session_node_has_every_language_analyzer(elasticsearch_url: str) -> None:
    with Elasticsearch(elasticsearch_url) as es:
        assert es.cluster.health()["status"] in {"green", "yellow"}
        for analyzer in LUCENE_ANALYZERS:
            assert es.indices.analyze(analyzer=analyzer, text="Running cities")["tokens"], analyzer
        stems = es.indices.analyze(analyzer="french", text="manifestations")["tokens"]
        assert [token["token"] for token in stems] == ["manifest"]


def test_a_second_node_starts_and_stops_by_its_pid_file(tmp_path: Path) -> None:
    node = LocalElasticsearch(
        home=ensure_installed(Settings().es_version, CACHE_DIR), data_dir=tmp_path / "node",
        http_port=free_port(), transport_port=free_port(), heap="256m", cluster_name="civic-lifecycle",
    )
    assert not node.is_ready() and node.pid() is None
    node.start()
    try:
        node.wait_ready(timeout_s=180)
        pid = node.pid()
        assert pid is not None and node.is_ready()
        with pytest.raises(RuntimeError, match="already running"):
            node.start()
    finally:
        node.stop()
    assert pid is not None and not pid_alive(pid)
    assert node.pid() is None and not node.pid_file.exists()
    assert node.log_file.exists()
