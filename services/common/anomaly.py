"""Online anomaly detector for mention-volume series (counts per time bucket).

Volume is compared on a log scale against a baseline of a slowly moving level, a time-of-day profile
and, once enough weeks are known, a time-of-week profile. The residual is followed at three time scales
(a burst, an afternoon, a new level), each divided by its learnt spread, and each scale is calibrated
against its own ordinary daily peak, so a series that spikes every day alerts on the spike out of the
ordinary; the shortest scale counts only once it has stood out for two rows, so a one-row blip is not
a burst. Beside the scales, two record columns measure how far the value itself lies beyond the range
of the last weeks, and beyond that range without its most extreme days, which catches a first-ever
level on a series too wandering for its residual to stand out. The verdict is the strongest column in
the requested direction: an online ensemble of per-scale detectors and the record ones. A lasting change
of level is accepted after a few hours, so it alerts once. Every estimate is an exponentially weighted,
outlier-clipped update over a fixed-size state.

The settings come from a leave-one-category-out cross-validation over the 53 labelled NAB development
series (bench/nab_sweep.py); bench/README.md has the figures.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypedDict, get_args

from services.common.anomaly_model import (
    DetectorSettings,
    PeakCalibration,
    RecordRange,
    ResidualModel,
    calibrated,
    record_z,
)

# Chosen by bench/nab_sweep.py: the rule its leave-one-category-out cross-validation checks, applied to all
# 53 NAB development series.
DEFAULT_SETTINGS = DetectorSettings()
# z at which the score reaches 1; the score is the calibrated z / FULL_SCALE_Z, so sensitivity s alerts
# at a calibrated z >= FULL_SCALE_Z (1 - s), and the default sensitivity at the chosen alert_z.
FULL_SCALE_Z = 10.0


def default_sensitivity(settings: DetectorSettings) -> float:
    """The sensitivity that alerts exactly at the settings' alert_z."""
    return round(1.0 - settings.alert_z / FULL_SCALE_Z, 4)


DEFAULT_SENSITIVITY = default_sensitivity(DEFAULT_SETTINGS)
# Bumped whenever the detector's state changes shape: a stored state of another version is relearnt.
STATE_VERSION = 4

Direction = Literal["rise", "fall", "both"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)


class AnomalyRecord(TypedDict):
    timestamp: str
    score: float
    alert: bool


@dataclass(frozen=True)
class Verdict:
    score: float  # in [0, 1]; grows with how far volume sits from its expected level, in `direction`
    alert: bool


class AlertGate:
    """Whether an anomalous point becomes an alert: a burst or a new level is one event to a person.

    No alert during the warm-up; after an alert, none until the score has fallen back below
    `rearm_share` of the alert threshold (the event is over) and the cooldown has passed.
    """

    def __init__(self, warmup_s: float, cooldown_s: float) -> None:
        self._warmup_s = warmup_s
        self._cooldown_s = cooldown_s
        self._first_time = math.nan
        self._last_alert = -math.inf
        self._armed = True

    def admit(self, timestamp: float, anomalous: bool, calm: bool = False) -> bool:
        if math.isnan(self._first_time):
            self._first_time = timestamp
        if calm:
            self._armed = True
        alert = (
            anomalous
            and self._armed
            and timestamp - self._first_time >= self._warmup_s
            and timestamp - self._last_alert >= self._cooldown_s
        )
        if alert:
            self._last_alert = timestamp
            self._armed = False
        return alert


def direction_columns(zs: list[float], direction: Direction) -> list[float]:
    """The non-negative evidence of each scale in `direction`: rises, falls, or both side by side."""
    rises = [max(z, 0.0) for z in zs]
    falls = [max(-z, 0.0) for z in zs]
    return rises if direction == "rise" else falls if direction == "fall" else rises + falls


class VolumeAnomalyDetector:
    """Scores one series point by point; feed its points in time order.

    sensitivity is in (0, 1): an alert is raised when the score reaches 1 - sensitivity, so higher
    sensitivity means more alerts. `direction` says what counts as anomalous: volume above its expected
    level ("rise", spikes), below it ("fall", a flatline), or either ("both"); everything the detector
    learns is the same either way. After an alert the detector stays quiet for a cooldown.
    """

    def __init__(
        self,
        sensitivity: float | None = None,
        *,
        direction: Direction = "rise",
        settings: DetectorSettings = DEFAULT_SETTINGS,
    ) -> None:
        chosen = default_sensitivity(settings) if sensitivity is None else sensitivity
        if not 0.0 < chosen < 1.0:
            raise ValueError(f"sensitivity must be in (0, 1), got {chosen}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        self.state_version = STATE_VERSION  # on the instance, so a pickled state keeps the version it was made by
        self.sensitivity = chosen
        self.direction: Direction = direction
        self.settings = settings
        self._model = ResidualModel(settings)
        scales = len(settings.scales_s)
        # Both directions are calibrated whatever is reported, so the state is the same for every use.
        self._calibration = PeakCalibration(2 * scales, settings.peak_days)
        self._records = RecordRange(settings.record_days, settings.trimmed_record_rank)
        # The shortest scale's calibrated rise and fall on the previous row, for `burst_confirm_share`.
        self._previous_burst = (0.0, 0.0)
        self._gate = AlertGate(settings.warmup_s, settings.cooldown_s)

    def update(self, value: float, timestamp: float) -> Verdict:
        """Score one bucket (value = count, timestamp = seconds since the epoch), then learn from it."""
        zs = self._model.update(value, timestamp)
        columns = direction_columns(zs, "both")
        peaks = self._calibration.observe(columns, timestamp)
        scales = len(zs)
        first, end = {"rise": (0, scales), "fall": (scales, 2 * scales), "both": (0, 2 * scales)}[self.direction]
        evidence = [calibrated(column, peak, self.settings) for column, peak in zip(columns, peaks, strict=True)]
        burst = (evidence[0], evidence[scales])
        least = self.settings.burst_confirm_share * self.settings.alert_z
        for column, before in zip((0, scales), self._previous_burst, strict=True):
            if before < least:
                evidence[column] = 0.0
        self._previous_burst = burst
        full, trimmed = self._records.observe(value, timestamp)
        strongest = max(
            record_z(self._in_direction(full), self.settings.record_margin, self.settings),
            record_z(self._in_direction(trimmed), self.settings.trimmed_record_margin, self.settings),
            *evidence[first:end],
        )
        score = min(strongest / FULL_SCALE_Z, 1.0)
        threshold = 1.0 - self.sensitivity
        alert = self._gate.admit(timestamp, score >= threshold, score < self.settings.rearm_share * threshold)
        return Verdict(score=score, alert=alert)

    def _in_direction(self, shares: tuple[float, float]) -> float:
        above, below = shares
        return {"rise": above, "fall": below, "both": max(above, below)}[self.direction]


def detect_csv(path: Path, sensitivity: float | None = None, direction: Direction = "rise") -> Iterator[AnomalyRecord]:
    """Score a NAB-style `timestamp,value` CSV row by row, as `civic detect-anomalies --csv` prints it.

    Raises ValueError naming the line when a row cannot be read, so a bad file fails with a usable message.
    """
    detector = VolumeAnomalyDetector(sensitivity, direction=direction)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a header with timestamp and value columns")
        for row in reader:
            try:
                moment = datetime.fromisoformat(row["timestamp"])
                value = float(row["value"])
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path}:{reader.line_num}: {error}") from error
            if not math.isfinite(value):
                raise ValueError(f"{path}:{reader.line_num}: value must be a finite number, got {row['value']}")
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            verdict = detector.update(value, moment.timestamp())
            yield {"timestamp": row["timestamp"], "score": verdict.score, "alert": verdict.alert}
