"""The online volume anomaly detector on synthetic seasonal series, and the CSV entry point."""

import csv
import math
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from civic.listening.v1 import alerting_pb2
from services.alerting import volume
from services.alerting.rules import WindowCounts
from services.alerting.store import AlertStore
from services.common.anomaly import (
    DEFAULT_SENSITIVITY,
    DEFAULT_SETTINGS,
    Direction,
    VolumeAnomalyDetector,
    detect_csv,
)

STEP = 300
ROWS_PER_DAY = 288
START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
DAYS = 14
SPIKE_START = 11 * ROWS_PER_DAY + 100  # day 11, mid-morning
SPIKE_ROWS = 12  # one hour


def seasonal_rate(days: int = DAYS) -> np.ndarray:
    """A strong daily cycle (about 10x between night and day) and a weekend dip."""
    rows = np.arange(days * ROWS_PER_DAY)
    day_phase = 2 * math.pi * (rows % ROWS_PER_DAY) / ROWS_PER_DAY
    weekday = (rows // ROWS_PER_DAY) % 7
    return 60 * np.exp(1.2 * np.sin(day_phase)) * np.where(weekday >= 5, 0.6, 1.0)


def seasonal_counts(seed: int, spike: bool) -> np.ndarray:
    rate = seasonal_rate()
    if spike:
        rate[SPIKE_START : SPIKE_START + SPIKE_ROWS] *= 6
    return np.random.default_rng(seed).poisson(rate).astype(float)


def run(counts: np.ndarray, sensitivity: float | None = None, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    """Alerts and scores of a detector fed the counts at 5-minute steps from START."""
    detector = VolumeAnomalyDetector(sensitivity, **kwargs)  # type: ignore[arg-type]
    start = START.timestamp()
    verdicts = [detector.update(value, start + STEP * i) for i, value in enumerate(counts)]
    return np.array([v.alert for v in verdicts]), np.array([v.score for v in verdicts])


def alerts_for(counts: np.ndarray, sensitivity: float | None = None, **kwargs: object) -> np.ndarray:
    return run(counts, sensitivity, **kwargs)[0]


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


def test_rejects_a_sensitivity_outside_the_open_unit_interval_and_an_unknown_direction() -> None:
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match="sensitivity"):
            VolumeAnomalyDetector(bad)
    with pytest.raises(ValueError, match="direction"):
        VolumeAnomalyDetector(direction="up")  # type: ignore[arg-type]


def test_state_does_not_grow_with_the_number_of_points() -> None:
    """What a volume rule stores per series: the pickled detector, the same size once its rings of daily
    extremes are full (record_days) as 40 days later."""
    days = DEFAULT_SETTINGS.record_days + 42
    counts = np.random.default_rng(7).poisson(seasonal_rate(days)).astype(float)
    detector = VolumeAnomalyDetector()
    start = START.timestamp()
    full = (DEFAULT_SETTINGS.record_days + 2) * ROWS_PER_DAY
    sizes = {}
    for i, value in enumerate(counts):
        detector.update(value, start + STEP * i)
        if i + 1 in (full, len(counts)):
            sizes[i + 1] = len(pickle.dumps(detector))
    assert abs(sizes[len(counts)] - sizes[full]) <= 8  # only integer counters may take a byte or two more
    assert sizes[full] < 16_384


def test_scores_stay_in_the_unit_interval_on_extreme_input() -> None:
    for direction in ("rise", "fall", "both"):
        detector = VolumeAnomalyDetector(direction=direction)  # type: ignore[arg-type]
        start = START.timestamp()
        for i, value in enumerate([0.0] * 400 + [1e9, 0.0, 5.0, 1e12, -3.0] + [3.0] * 50):
            verdict = detector.update(value, start + STEP * i)
            assert 0.0 <= verdict.score <= 1.0


@pytest.mark.parametrize("seed", [1, 2])
def test_a_value_beyond_the_weeks_range_alerts_where_the_residual_alone_would_not(seed: int) -> None:
    """A series this noisy has a residual spread too wide for a quarter-hour above its range to stand
    out; the record column sees that no value in days came this high."""
    values = np.random.default_rng(seed).uniform(10.0, 90.0, 10 * ROWS_PER_DAY)
    at = 8 * ROWS_PER_DAY + 100
    values[at : at + 3] = 100.0
    without_records = replace(DEFAULT_SETTINGS, record_margin=math.inf)
    assert np.flatnonzero(alerts_for(values, direction="rise")).tolist() == [at]
    assert not alerts_for(values, direction="rise", settings=without_records).any()


@pytest.mark.parametrize("seed", [1, 2])
def test_one_extreme_day_does_not_hide_a_later_record(seed: int) -> None:
    """An outburst on day 2 stretches the full range for weeks; the trimmed range sets the two most
    extreme days aside, so a later level above everything else the series did is still a record."""
    values = np.random.default_rng(seed).uniform(10.0, 90.0, 10 * ROWS_PER_DAY)
    values[2 * ROWS_PER_DAY + 50] = 400.0
    at = 8 * ROWS_PER_DAY + 100
    values[at : at + 3] = 160.0
    untrimmed = replace(DEFAULT_SETTINGS, trimmed_record_margin=math.inf)
    assert at in np.flatnonzero(alerts_for(values, direction="rise")).tolist()
    assert at not in np.flatnonzero(alerts_for(values, direction="rise", settings=untrimmed)).tolist()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_burst_must_last_longer_than_one_row(seed: int) -> None:
    """On the shortest scale a single row far out is a blip, two in a row a burst (the record columns are
    off here, so only the scales can alert)."""
    scales_only = replace(DEFAULT_SETTINGS, record_margin=math.inf, trimmed_record_margin=math.inf)
    every_row = replace(scales_only, burst_confirm_share=0.0)
    for rows, confirmed_alerts in ((1, False), (2, True)):
        counts = seasonal_counts(seed, spike=False)
        counts[SPIKE_START : SPIKE_START + rows] *= 10
        burst = slice(SPIKE_START, SPIKE_START + rows)
        assert alerts_for(counts, settings=every_row)[burst].any()
        assert alerts_for(counts, settings=scales_only)[burst].any() == confirmed_alerts


def test_a_lasting_level_shift_alerts_once_then_becomes_the_new_normal() -> None:
    """Volume triples for good on day 8: one alert at the step; within a day the new level is ordinary
    (the score is calm again), so the burst of day 11 on top of it is an event of its own."""
    rate = seasonal_rate()
    step = 8 * ROWS_PER_DAY + 120
    rate[step:] *= 3
    rate[SPIKE_START : SPIKE_START + SPIKE_ROWS] *= 6
    counts = np.random.default_rng(11).poisson(rate).astype(float)
    alerts, scores = run(counts)
    assert alerts[step : step + 12].any()
    assert alerts[SPIKE_START : SPIKE_START + SPIKE_ROWS].any()
    assert np.count_nonzero(alerts) == 2
    calm = DEFAULT_SETTINGS.rearm_share * (1 - DEFAULT_SENSITIVITY)
    next_day = slice(step + ROWS_PER_DAY, step + 2 * ROWS_PER_DAY)
    assert scores[next_day].max() < calm
    # Without accepting the new level, the step is still news a day later.
    _, stubborn = run(counts, settings=replace(DEFAULT_SETTINGS, shift_z=math.inf))
    assert stubborn[next_day].max() >= calm


def test_the_weekly_profile_learns_a_weekly_surge_once_enough_weeks_are_known() -> None:
    """Every Monday morning volume swells to 5x: a daily-only baseline keeps being surprised by it, the
    weekly profile expects it once `weekly_after_weeks` weeks are known."""
    weeks = 6
    rows = np.arange(weeks * 7 * ROWS_PER_DAY)
    hour = (rows % ROWS_PER_DAY) / 12.0
    monday = (rows // ROWS_PER_DAY) % 7 == 0
    swell = np.where(monday & (np.abs(hour - 10.0) < 2.0), 0.5 + 0.5 * np.cos(np.pi * (hour - 10.0) / 2.0), 0.0)
    counts = np.random.default_rng(12).poisson(40.0 * (1.0 + 4.0 * swell)).astype(float)
    later = rows >= (DEFAULT_SETTINGS.weekly_after_weeks + 1) * 7 * ROWS_PER_DAY
    assert not alerts_for(counts)[later].any()
    daily_only = replace(DEFAULT_SETTINGS, weekly_after_weeks=math.inf)
    assert alerts_for(counts, settings=daily_only)[later & (swell > 0)].any()


def test_a_daily_batch_spike_stops_alerting_but_an_unusual_burst_still_does() -> None:
    """A 10-minute 8x spike every night at 03:00 is ordinary after a few days; an hour at 8x at noon is not."""
    days = 12
    rows = np.arange(days * ROWS_PER_DAY)
    rate = np.full(len(rows), 30.0)
    nightly = (rows % ROWS_PER_DAY >= 36) & (rows % ROWS_PER_DAY < 38)
    rate[nightly] *= 8
    burst = 10 * ROWS_PER_DAY + 144
    rate[burst : burst + 12] *= 8
    counts = np.random.default_rng(13).poisson(rate).astype(float)
    alerts = alerts_for(counts, direction="both")
    settled = rows >= 5 * ROWS_PER_DAY
    assert not alerts[nightly & settled].any()
    assert alerts[burst : burst + 12].any()


@pytest.mark.parametrize(("direction", "sees_spike", "sees_flatline"), [
    ("rise", True, False), ("fall", False, True), ("both", True, True),
])
def test_direction_chooses_spikes_flatlines_or_both(
    direction: Direction, sees_spike: bool, sees_flatline: bool
) -> None:
    counts = seasonal_counts(14, spike=True)
    flatline = 8 * ROWS_PER_DAY + 100
    counts[flatline : flatline + 36] = 0.0  # three hours of silence at midday
    alerts = alerts_for(counts, direction=direction)
    assert bool(alerts[SPIKE_START : SPIKE_START + SPIKE_ROWS].any()) == sees_spike
    assert bool(alerts[flatline : flatline + 36].any()) == sees_flatline


def test_a_volume_rule_relearns_a_detector_stored_by_another_version(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.sqlite3")
    rule = alerting_pb2.Rule(id="spike", tenant="t", kind=alerting_pb2.RULE_KIND_VOLUME_SPIKE, window_seconds=3600)
    start = int(START.timestamp())
    for hour in range(48):
        store.put_window("t", "spike", start + 3600 * hour, WindowCounts(count=20 + hour % 3))
    store.put_detector("t", "spike", start + 3600 * 40, pickle.dumps({"an": "old detector state"}))
    verdicts = volume.learn_closed(store, rule, start + 3600 * 48, horizon=start)
    assert [s for s, _ in verdicts] == [start + 3600 * hour for hour in range(48)]  # from the first window again
    stored = volume.stored_detector(store, rule)
    assert stored is not None and stored[0] == start + 3600 * 48
    assert stored[1].direction == "rise"


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
    path.write_text("timestamp,value\n2024-01-01 00:00:00,3\n2024-01-01 00:05:00,nan\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: value must be a finite number"):
        list(detect_csv(path))
    path.write_text("time,count\n2024-01-01 00:00:00,3\n")
    with pytest.raises(ValueError, match="timestamp and value"):
        list(detect_csv(path))
