"""Fixtures of the alerting tests: alerting servers over one store per test (a SQLite state file, or a
PostgreSQL database for the modules marked `both_stores`, which run once on each), and a webhook
receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import Settings
from tests.alerting.helpers import SECRET, Received, Receiver, Running

SQLITE, POSTGRES = "sqlite", "postgres"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of a `both_stores` module that start alerting run on SQLite and on PostgreSQL (slow: it
    starts a PostgreSQL server, once per session)."""
    if "alerting_store" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_stores"):
        metafunc.parametrize("alerting_store", [SQLITE, pytest.param(POSTGRES, marks=pytest.mark.slow)])


@pytest.fixture
def alerting_store() -> str:
    return SQLITE


@pytest.fixture
def start(tmp_path: Path, alerting_store: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Running]]:
    """Starts servers on tmp_path/alerting.sqlite3 (or this test's PostgreSQL database); several in turn
    share the same store, and a test that names another state file gets another store."""
    started: list[Running] = []
    databases: dict[Path, str] = {}

    def database(path: Path) -> str:
        if alerting_store == SQLITE:
            return ""
        if path not in databases:
            databases[path] = request.getfixturevalue("postgres_server").create_database(f"t_{uuid.uuid4().hex[:12]}")
        return databases[path]

    def factory(**overrides: Any) -> Running:
        # No Elasticsearch copy unless a test asks for one (with the fixture's URL).
        path = overrides.pop("alerting_state_path", tmp_path / "alerting.sqlite3")
        overrides.setdefault("alerts_index_prefix", "")
        settings = Settings(alerting_state_path=path, alerting_database_url=database(path), **overrides)
        running = Running(settings)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.close()


@pytest.fixture
def alerting(start: Callable[..., Running]) -> Running:
    return start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that checks each request's signature and records its Idempotency-Key."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(state.delay_s)
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            signed = hmac.compare_digest(expected, self.headers.get("X-Civic-Signature", ""))
            state.requests.append(Received(time.monotonic(), body, signed, self.headers.get("Idempotency-Key", "")))
            self.send_response(503 if len(state.requests) <= state.fail_first else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()
