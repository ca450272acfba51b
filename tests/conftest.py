"""Loads every fixture module in tests/fixtures/ (Elasticsearch, inference, service processes) and marks
`slow` every test that needs one of the servers they start, so that `pytest -m "not slow"` (`make
test-fast`) never starts Java, Ray, a browser or a stack of service processes, whoever wrote the test."""

from pathlib import Path

import pytest

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)

# The fixtures that start a server process: Elasticsearch (Java), the inference service (Ray Serve), the
# stacks of service processes built on them (the dashboard's also drives Chromium through them), and
# PostgreSQL (alerting's shared store).
SERVER_FIXTURES = frozenset(
    {"elasticsearch_url", "inference_target", "make_pipeline", "secured_stack", "dashboard_stack", "postgres_server"}
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
