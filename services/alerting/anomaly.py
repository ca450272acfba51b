"""Online anomaly detector for mention-volume series (counts per time bucket).

Volume is compared on a log scale (bursts are multiplicative and counts are Poisson-like) against a
baseline made of a slowly moving level plus a time-of-day profile, so the daily cycle is not mistaken for
a burst. Every estimate is an exponentially weighted, outlier-clipped update: the state is a fixed size
per series, and a burst cannot drag the baseline up while it is being reported.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import numpy as np

SECONDS_PER_DAY = 86_400.0
# Chosen on the five NAB development series only (bench/nab.py); it puts the alert threshold at a
# robust z of 4.2, in the middle of the range where every setting meets the benchmark's bar.
DEFAULT_SENSITIVITY = 0.58
# z at which the score reaches 1; the score is z / FULL_SCALE_Z, so sensitivity s alerts at z >= 10 (1 - s).
FULL_SCALE_Z = 10.0
# Smallest spread assumed on the log scale (about +-25% volume): without it the steadiest hours, whose
# learnt spread is tiny, turn a modest wobble into a huge z. A burst has to be large as well as unusual.
MIN_SPREAD = 0.25
# Residuals beyond this many spreads are clipped before they are learnt, so bursts barely move the baseline.
CLIP_SPREADS = 3.0
HOURS_PER_DAY = 24
MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2.0)


class AnomalyRecord(TypedDict):
    timestamp: str
    score: float
    alert: bool


@dataclass(frozen=True)
class Verdict:
    score: float  # in [0, 1]; grows with how far volume sits above its expected level
    alert: bool


def _decay(elapsed_s: float, halflife_s: float) -> float:
    """Weight given to a new observation by an exponential average with the given half-life."""
    return 1.0 - math.pow(0.5, elapsed_s / halflife_s)


class _CyclicProfile:
    """A value per position in a cycle (here a day), held as slot values interpolated between centres.

    Interpolation keeps the profile continuous, so the turn of a slot is not read as a jump in volume.
    A slot learns as a running mean while it is new, then as an exponential average over
    `halflife_cycles` visits, so it is usable after one cycle yet keeps following slow change.
    """

    def __init__(self, period_s: float, slots: int, halflife_cycles: float) -> None:
        self._period_s = period_s
        self._slot_s = period_s / slots
        self._halflife_s = halflife_cycles * period_s
        self.values = np.zeros(slots)
        self._weights = np.zeros(slots)

    def _neighbours(self, timestamp: float) -> tuple[int, int, float]:
        position = (timestamp % self._period_s) / self._slot_s - 0.5
        base = math.floor(position)
        slots = len(self.values)
        return base % slots, (base + 1) % slots, position - base

    def known(self, timestamp: float) -> bool:
        lower, upper, _ = self._neighbours(timestamp)
        return bool(self._weights[lower] > 0 or self._weights[upper] > 0)

    def at(self, timestamp: float) -> float:
        lower, upper, share = self._neighbours(timestamp)
        return float((1.0 - share) * self.values[lower] + share * self.values[upper])

    def nudge(self, timestamp: float, error: float, elapsed_s: float) -> None:
        """Move the slots around `timestamp` towards `value + error`, each in proportion to its share."""
        lower, upper, share = self._neighbours(timestamp)
        visit_rate = _decay(elapsed_s * len(self.values), self._halflife_s)
        for slot, part in ((lower, 1.0 - share), (upper, share)):
            if part > 0.0:
                self._weights[slot] += part
                self.values[slot] += part * max(1.0 / self._weights[slot], visit_rate) * error


class VolumeAnomalyDetector:
    """Scores one series point by point; feed its points in time order.

    sensitivity is in (0, 1): an alert is raised when the score reaches 1 - sensitivity, so higher
    sensitivity means more alerts. `falling` scores how far volume sits below its expected level
    instead (a flatline); everything the detector learns is the same either way. After an alert the
    detector stays quiet for a cooldown, because a burst is one event to a person reading alerts,
    however many buckets it spans.
    """

    def __init__(
        self,
        sensitivity: float | None = None,
        *,
        level_halflife_s: float = 2 * SECONDS_PER_DAY,
        profile_halflife_days: float = 3.0,
        smoothing_halflife_s: float = 300.0,
        cooldown_s: float = SECONDS_PER_DAY,
        warmup_s: float = SECONDS_PER_DAY,
        min_spread: float = MIN_SPREAD,
        falling: bool = False,
    ) -> None:
        chosen = DEFAULT_SENSITIVITY if sensitivity is None else sensitivity
        if not 0.0 < chosen < 1.0:
            raise ValueError(f"sensitivity must be in (0, 1), got {chosen}")
        self.sensitivity = chosen
        self._level_halflife_s = level_halflife_s
        self._smoothing_halflife_s = smoothing_halflife_s
        self._cooldown_s = cooldown_s
        self._warmup_s = warmup_s
        self._min_spread = min_spread
        self._direction = -1.0 if falling else 1.0
        self._daily = _CyclicProfile(SECONDS_PER_DAY, HOURS_PER_DAY, profile_halflife_days)
        self._spread = _CyclicProfile(SECONDS_PER_DAY, HOURS_PER_DAY, profile_halflife_days)
        self._level = math.nan
        self._smoothed = 0.0
        self._first_time = math.nan
        self._last_time = math.nan
        self._last_alert = -math.inf

    def update(self, value: float, timestamp: float) -> Verdict:
        """Score one bucket (value = count, timestamp = seconds since the epoch), then learn from it."""
        y = math.log1p(max(value, 0.0))
        if math.isnan(self._level):
            self._level = y
            self._first_time = timestamp
            self._last_time = timestamp
        elapsed = max(timestamp - self._last_time, 1.0)
        self._last_time = timestamp
        residual = y - self._level - self._daily.at(timestamp)
        self._smoothed += _decay(elapsed, self._smoothing_halflife_s) * (residual - self._smoothed)
        learnt_spread = self._spread.at(timestamp)
        spread = max(learnt_spread if self._spread.known(timestamp) else abs(self._smoothed), self._min_spread)
        score = min(max(self._direction * self._smoothed / spread, 0.0) / FULL_SCALE_Z, 1.0)
        warmed = timestamp - self._first_time >= self._warmup_s
        quiet = timestamp - self._last_alert >= self._cooldown_s
        alert = warmed and quiet and score >= 1.0 - self.sensitivity
        if alert:
            self._last_alert = timestamp
        bounded = max(-CLIP_SPREADS * spread, min(CLIP_SPREADS * spread, residual))
        self._level += _decay(elapsed, self._level_halflife_s) * bounded
        self._daily.nudge(timestamp, bounded, elapsed)
        deviation = min(abs(self._smoothed), CLIP_SPREADS * spread) * MEAN_ABS_TO_SIGMA
        self._spread.nudge(timestamp, deviation - learnt_spread, elapsed)
        return Verdict(score=score, alert=alert)


def detect_csv(path: Path, sensitivity: float | None = None) -> Iterator[AnomalyRecord]:
    """Score a NAB-style `timestamp,value` CSV row by row, as `civic detect-anomalies --csv` prints it.

    Raises ValueError naming the line when a row cannot be read, so a bad file fails with a usable message.
    """
    detector = VolumeAnomalyDetector(sensitivity)
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
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            verdict = detector.update(value, moment.timestamp())
            yield {"timestamp": row["timestamp"], "score": verdict.score, "alert": verdict.alert}
