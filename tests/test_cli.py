"""The `civic` commands that need no running stack, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from civic.listening.v1 import ingestion_pb2
from services.cli import render

REPO = Path(__file__).resolve().parents[1]
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


def test_detect_anomalies_reads_a_nab_file() -> None:
    result = civic("detect-anomalies", "--csv", str(NAB / "Twitter_volume_KO.csv"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 15_851
    assert rows[0]["timestamp"] == "2015-02-26 21:42:53"
    assert 0 < sum(row["alert"] for row in rows) < 50


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
