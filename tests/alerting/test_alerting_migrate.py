"""Moving a single replica's SQLite state into PostgreSQL (services/alerting/migrate.py): replicas on
the database answer with the same rules, alerts, silences, webhooks and events, new events continue
the sequence, and a database that already holds state is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from civic.listening.v1 import alerting_pb2
from services.alerting.migrate import MigrationError, main, migrate
from services.common.settings import Settings
from tests.alerting.helpers import Running, fire, hook, matcher, rule

TENANT = "city-a"


def snapshot(running: Running) -> dict[str, list[Any]]:
    stub = running.stub
    return {
        "rules": running.rules(),
        "alerts": running.alerts(),
        "silences": list(stub.ListSilences(alerting_pb2.ListSilencesRequest(tenant=TENANT), timeout=10).silences),
        "webhooks": list(stub.ListWebhooks(alerting_pb2.ListWebhooksRequest(tenant=TENANT), timeout=10).webhooks),
        "events": list(running.alerting.store.events(TENANT, 0, 100)),
    }


@pytest.mark.slow
def test_state_moves_into_postgres_and_replicas_go_on_from_it(
    start: Callable[..., Running], postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "single.sqlite3"
    single = start(alerting_state_path=state)
    single.put(rule("holes", "query_match", query="pothole"), rule("floods", "query_match", query="flood"))
    first, _ = fire(single, range(2))
    single.stub.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(tenant=TENANT, alert_id=first.id, by="ana"))
    silence = alerting_pb2.Silence(tenant=TENANT, matchers=[matcher("rule", "floods")], created_by="ana")
    silence.ends_at.FromDatetime(datetime.now(UTC) + timedelta(days=2))
    single.stub.CreateSilence(alerting_pb2.CreateSilenceRequest(silence=silence), timeout=10)
    single.stub.PutWebhook(hook("http://127.0.0.1:9/hook"), timeout=10)  # nobody listens: deliveries wait
    before = snapshot(single)
    single.close()

    copied = migrate(state, postgres_url, Settings())
    assert (copied["rules"], copied["alerts"], copied["silences"], copied["webhooks"]) == (2, 2, 1, 1)
    assert copied["events"] == len(before["events"]) >= 3 and copied["seen_posts"] == 2

    shared = Running(Settings(alerting_state_path=tmp_path / "unused.sqlite3", alerting_database_url=postgres_url,
                              alerts_index_prefix=""))
    try:
        assert snapshot(shared) == before
        (later,) = fire(shared, range(2, 3))
        events = shared.alerting.store.events(TENANT, 0, 100)
        assert events[-1].alert.id == later.id
        assert events[-1].sequence > max(event.sequence for event in before["events"])
        assert not (tmp_path / "unused.sqlite3").exists()
    finally:
        shared.close()

    with pytest.raises(MigrationError, match=r"already holds alerting state \(.*alerts: 3"):
        migrate(state, postgres_url, Settings())
    assert main(["--from", str(state), "--to", postgres_url]) == 1
    assert "already holds alerting state" in capsys.readouterr().err


def test_refuses_what_is_not_a_postgres_url_or_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="--to must be a PostgreSQL URL"):
        migrate(tmp_path / "x.sqlite3", "sqlite:///x", Settings())
    with pytest.raises(MigrationError, match="no alerting state file at"):
        migrate(tmp_path / "missing.sqlite3", "postgresql://127.0.0.1:1/none", Settings())
