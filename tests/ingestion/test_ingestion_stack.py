"""`civic up` starts ingestion's webhook receiver on a configured port."""

from __future__ import annotations

import pytest

from services.cli.stack import Stack
from services.common.settings import Settings


def test_the_stack_gives_ingestion_the_configured_webhook_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIVIC_WEBHOOK_PORT", raising=False)
    assert Stack(Settings()).child_env()["CIVIC_WEBHOOK_PORT"] == "50056"
    assert Stack(Settings(stack_webhook_port=50999)).child_env()["CIVIC_WEBHOOK_PORT"] == "50999"


def test_an_operators_webhook_port_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVIC_WEBHOOK_PORT", "0")
    assert Stack(Settings()).child_env()["CIVIC_WEBHOOK_PORT"] == "0"
