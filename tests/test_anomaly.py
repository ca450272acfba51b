"""The online volume anomaly detector on synthetic seasonal series, and the CSV entry point."""

import csv
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.alerting.anomaly import VolumeAnomalyDetector, detect_csv

STEP = 300
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 14
SPIKE_START = 11 * 288 + 100  # day 11, mid-morning
SPIKE_ROWS = 12  # one hour


def seasonal_counts(seed: int, spike: bool) -> np.ndarray:
    """Poisson counts with a strong daily cycle (about 10x between night and day) and a weekend dip."""
    rng = np.random.default_rng(seed)
    rows = np.arange(DAYS * 288)
    day_phase = 2 * math.pi * (rows % 288) / 288
    weekday = (rows // 288) % 7
    rate = 60 * np.exp(1.2 * np.sin(day_phase)) * np.where(weekday >= 5, 0.6, 1.0)
    if spike:
        rate[SPIKE_START : SPIKE_START + SPIKE_ROWS] *= 6
    return rng.poisson(rate).astype(float)


def alerts_for(counts: np.ndarray, sensitivity: float | None = None) -> np.ndarray:
    detector = VolumeAnomalyDetector(sensitivity)
    start = START.timestamp()
    return np.array([detector.update(value, start + STEP * i).alert for i, value in enumerate(counts)])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fires_on_an_injected_spike_and_not_on_the_daily_cycle(seed: int) -> None:
    alerts = alerts_for(seasonal_counts(seed, spike=True))
    assert alerts[SPIKE_START : SPIKE_START + SPIKE_ROWS].any()
    assert not alerts[:SPIKE_START].any()
    assert np.flatnonzero(alerts).tolist() == [np.flatnonzero(alerts)[0]]


@pytest.mark.parametrize("seed", [4, 5])
def test_quiet_on_a_purely_seasonal_series(seed: int) -> None:
    assert not alerts_for(seasonal_counts(seed, spike=False)).any()


def test_higher_sensitivity_never_raises_fewer_alerts() -> None:
    counts = seasonal_counts(6, spike=True)
    counts[SPIKE_START + 600 : SPIKE_START + 606] *= 2.5
    assert alerts_for(counts, 0.9).sum() >= alerts_for(counts, 0.3).sum()


def test_rejects_a_sensitivity_outside_the_open_unit_interval() -> None:
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match="sensitivity"):
            VolumeAnomalyDetector(bad)


def state_bytes(holder: object) -> int:
    """Everything an object holds, measured from outside: arrays by buffer, nested objects recursively."""
    total = 0
    for value in vars(holder).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif hasattr(value, "__dict__"):
            total += state_bytes(value)
        else:
            total += sys.getsizeof(value)
    return total


def test_state_does_not_grow_with_the_number_of_points() -> None:
    counts = seasonal_counts(7, spike=True)
    detector = VolumeAnomalyDetector()
    start = START.timestamp()
    sizes = {}
    for i, value in enumerate(counts):
        detector.update(value, start + STEP * i)
        if i + 1 in (500, len(counts)):
            sizes[i + 1] = state_bytes(detector)
    assert sizes[500] == sizes[len(counts)]
    assert sizes[500] < 4096


def test_scores_stay_in_the_unit_interval_on_extreme_input() -> None:
    detector = VolumeAnomalyDetector()
    start = START.timestamp()
    for i, value in enumerate([0.0] * 400 + [1e9, 0.0, 5.0, 1e12] + [3.0] * 50):
        verdict = detector.update(value, start + STEP * i)
        assert 0.0 <= verdict.score <= 1.0


def test_detect_csv_yields_one_record_per_row(tmp_path: Path) -> None:
    counts = seasonal_counts(8, spike=True)
    path = tmp_path / "volume.csv"
    stamps = [(START + timedelta(seconds=STEP * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(len(counts))]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        writer.writerows(zip(stamps, counts.astype(int), strict=True))

    records = list(detect_csv(path))

    assert [r["timestamp"] for r in records] == stamps
    assert all(set(r) == {"timestamp", "score", "alert"} for r in records)
    assert all(isinstance(r["alert"], bool) and isinstance(r["score"], float) for r in records)
    assert all(0.0 <= r["score"] <= 1.0 for r in records)
    assert any(r["alert"] for r in records[SPIKE_START : SPIKE_START + SPIKE_ROWS])
    assert sum(r["alert"] for r in list(detect_csv(path, sensitivity=0.95))) >= sum(r["alert"] for r in records)


def test_detect_csv_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00:00,3\n2024-01-01 00:05:00,lots\n")
    with pytest.raises(ValueError, match=r"bad.csv:3"):
        list(detect_csv(path))
    path.write_text("time,count\n2024-01-01 00:00:00,3\n")
    with pytest.raises(ValueError, match="timestamp and value"):
        list(detect_csv(path))
