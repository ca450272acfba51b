"""The `civic` commands that need no running stack, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from civic.listening.v1 import ingestion_pb2
from services.cli import render

REPO = Path(__file__).resolve().parents[2]
CIVIC = str(Path(sys.executable).with_name("civic"))
NAB = REPO.parent / "shared" / "datasets" / "anomaly" / "nab"


def civic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVIC, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def seasonal_series(path: Path, spike_at: int) -> None:
    lines = ["timestamp,value"]
    for i in range(3 * 288):
        hour = (i // 12) % 24
        value = 20 + (15 if 8 <= hour < 20 else 0) + (i * 7) % 5
        if spike_at <= i < spike_at + 6:
            value = 400
        day, minute = divmod(i * 5, 1440)
        lines.append(f"2026-11-{10 + day:02d} {minute // 60:02d}:{minute % 60:02d}:00,{value}")
    path.write_text("\n".join(lines) + "\n")


def test_detect_anomalies_writes_one_json_line_per_row_and_flags_the_spike(tmp_path: Path) -> None:
    series = tmp_path / "volume.csv"
    seasonal_series(series, spike_at=2 * 288 + 150)
    result = civic("detect-anomalies", "--csv", str(series))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 * 288
    assert all(set(row) == {"timestamp", "score", "alert"} and 0.0 <= row["score"] <= 1.0 for row in rows)
    alerts = [i for i, row in enumerate(rows) if row["alert"]]
    assert alerts and all(2 * 288 + 150 <= i < 2 * 288 + 156 for i in alerts)


@pytest.mark.slow
def test_detect_anomalies_direction_chooses_rises_falls_or_both(tmp_path: Path) -> None:
    series = tmp_path / "volume.csv"
    seasonal_series(series, spike_at=2 * 288 + 150)
    lines = series.read_text().splitlines()
    silent = range(1 + 288 + 100, 1 + 288 + 136)  # three hours without posts on the second morning
    series.write_text("\n".join(f"{line.split(',')[0]},0" if i in silent else line for i, line in enumerate(lines)))

    def alert_rows(*args: str) -> list[int]:
        result = civic("detect-anomalies", "--csv", str(series), *args)
        assert result.returncode == 0, result.stderr
        return [i for i, line in enumerate(result.stdout.splitlines()) if json.loads(line)["alert"]]

    in_spike = range(2 * 288 + 150, 2 * 288 + 156)
    in_silence = range(288 + 100, 288 + 136)
    rises, falls, both = alert_rows(), alert_rows("--direction", "fall"), alert_rows("--direction", "both")
    assert any(i in in_spike for i in rises) and not any(i in in_silence for i in rises)
    assert any(i in in_silence for i in falls) and not any(i in in_spike for i in falls)
    assert any(i in in_spike for i in both) and any(i in in_silence for i in both)
    result = civic("detect-anomalies", "--csv", str(series), "--direction", "up")
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "civic: --direction must be one of rise, fall, both, got 'up'"
    ]


def test_detect_anomalies_reads_a_nab_file() -> None:
    result = civic("detect-anomalies", "--csv", str(NAB / "Twitter_volume_KO.csv"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 15_851
    assert rows[0]["timestamp"] == "2015-02-26 21:42:53"
    assert 0 < sum(row["alert"] for row in rows) < 50


@pytest.mark.slow
def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("when,count\n1,2\n")
    result = civic("detect-anomalies", "--csv", str(broken))
    assert result.returncode == 1
    assert result.stderr.startswith("civic:") and "Traceback" not in result.stderr
    unknown = tmp_path / "posts.xml"
    unknown.write_text("<posts/>")
    result = civic("ingest", str(unknown))
    assert result.returncode == 1
    assert "civic:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_classify_local_reads_stdin_and_writes_json_lines_in_order() -> None:
    texts = ["Worst service ever, I waited five hours for nothing.", "", "Merci beaucoup, tout était parfait !"]
    result = subprocess.run(
        [CIVIC, "classify", "--local"], input="\n".join(texts) + "\n", capture_output=True, text=True,
        timeout=600, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert rows[0]["label"] == "negative" and rows[2]["label"] == "positive"
    assert rows[2]["language"] == "fr"
    for row in rows:
        assert abs(sum(row["scores"].values()) - 1.0) < 1e-3


def test_classify_local_checks_the_topics_file_before_it_loads_the_model(tmp_path: Path) -> None:
    """A settings error that loading the model would hit (an unknown runtime) is never reached."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("Fares!: fares\n")
    result = subprocess.run(
        [CIVIC, "classify", "--local", "--topics", str(bad)], input="The bus is late\n", capture_output=True,
        text=True, timeout=120, cwd=REPO, env={**os.environ, "CIVIC_INFERENCE_RUNTIME": "no-such-runtime"},
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"civic: {bad}: topic 'Fares!'.name: must be"), result.stderr
    assert "no-such-runtime" not in result.stderr


def test_ingestion_figures_name_their_tenant_when_they_are_one_tenants() -> None:
    def shown(stats: ingestion_pb2.GetIngestionStatsResponse) -> str:
        console = Console(record=True, width=200)
        render.ingestion_stats(console, stats)
        return console.export_text()

    mine = shown(ingestion_pb2.GetIngestionStatsResponse(tenant="city-a", accepted=4, forwarded=2, pending=1,
                                                          failed=1))
    assert mine.startswith("ingestion (city-a): 4 accepted, 2 forwarded, 1 pending, 1 failed downstream")
    everyone = shown(ingestion_pb2.GetIngestionStatsResponse(accepted=9, last_error="Enrich: UNAVAILABLE"))
    assert everyone.startswith("ingestion: 9 accepted")
    assert everyone.rstrip().endswith("last error: Enrich: UNAVAILABLE")
    stalled = ingestion_pb2.GetIngestionStatsResponse(accepted=9, pending=9, last_error="Enrich: UNAVAILABLE")
    stalled.stalled_since.FromSeconds(1_763_000_000)
    assert "; forwarder stalled since 2025-11-13T02:13:20Z; last error: Enrich: UNAVAILABLE" in shown(stalled)
    assert "stalled" not in everyone
