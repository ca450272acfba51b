"""Fixtures of the alerting tests: alerting servers over one SQLite state file per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import Settings
from tests.alerting.helpers import Running


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Starts servers on tmp_path/alerting.sqlite3; several in turn share the same state file."""
    started: list[Running] = []

    def factory(**overrides: Any) -> Running:
        # No Elasticsearch copy unless a test asks for one (with the fixture's URL).
        base = {"alerting_state_path": tmp_path / "alerting.sqlite3", "alerts_index_prefix": ""}
        settings = Settings(**{**base, **overrides})
        running = Running(settings)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.close()


@pytest.fixture
def alerting(start: Callable[..., Running]) -> Running:
    return start()
