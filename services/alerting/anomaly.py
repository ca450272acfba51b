"""Online anomaly detector for mention-volume series (counts per time bucket).

Volume is compared on a log scale (bursts are multiplicative and counts are Poisson-like) against a
baseline made of a slowly moving level plus a time-of-day profile, so the daily cycle is not mistaken for
a burst. Every estimate is an exponentially weighted, outlier-clipped update, which keeps the state a
fixed size per series and stops a burst from dragging the baseline up while it is being reported.
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
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
DEFAULT_SENSITIVITY = 0.5
MIN_SPREAD = 0.05  # log-scale noise floor, so a perfectly flat stretch does not make every wiggle extreme


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


class VolumeAnomalyDetector:
    """Scores one series point by point; feed points in time order.

    sensitivity is in (0, 1): an alert is raised when the score exceeds 1 - sensitivity, so higher
    sensitivity means more alerts. After an alert the detector stays quiet for a cooldown, because a
    burst is one event to a person reading alerts, however many buckets it spans.
    """

    def __init__(
        self,
        sensitivity: float | None = None,
        *,
        slot_seconds: int = 3600,
        period_s: float = SECONDS_PER_DAY,
        level_halflife_s: float = SECONDS_PER_DAY,
        profile_halflife_days: float = 3.0,
        smoothing_halflife_s: float = 900.0,
        cooldown_s: float = SECONDS_PER_DAY,
        warmup_s: float = SECONDS_PER_DAY,
        clip_sigmas: float = 3.0,
        score_scale: float = 4.0,
    ) -> None:
        chosen = DEFAULT_SENSITIVITY if sensitivity is None else sensitivity
        if not 0.0 < chosen < 1.0:
            raise ValueError(f"sensitivity must be in (0, 1), got {chosen}")
        self.sensitivity = chosen
        self._slot_seconds = slot_seconds
        self._period_s = period_s
        self._slots = int(period_s // slot_seconds)
        self._level_halflife_s = level_halflife_s
        self._profile_halflife_s = profile_halflife_days * SECONDS_PER_DAY
        self._smoothing_halflife_s = smoothing_halflife_s
        self._cooldown_s = cooldown_s
        self._warmup_s = warmup_s
        self._clip = clip_sigmas
        self._score_scale = score_scale
        self._profile = np.zeros(self._slots)
        self._weight = np.zeros(self._slots)
        self._spread = np.zeros(self._slots)
        self._level = math.nan
        self._smoothed = 0.0
        self._first_time = math.nan
        self._last_time = math.nan
        self._last_alert = -math.inf

    def state_size(self) -> int:
        """Bytes held for this series; it does not grow with the number of points seen."""
        arrays = self._profile.nbytes + self._weight.nbytes + self._spread.nbytes
        return arrays + 8 * 6

    def update(self, value: float, timestamp: float) -> Verdict:
        """Score one bucket (value = count, timestamp = seconds since the epoch) and learn from it."""
        y = math.log1p(max(value, 0.0))
        if math.isnan(self._level):
            self._level = y
            self._first_time = timestamp
            self._last_time = timestamp
        elapsed = max(timestamp - self._last_time, 1.0)
        self._last_time = timestamp
        lower, upper, share = self._neighbours(timestamp)
        expected = (1.0 - share) * self._profile[lower] + share * self._profile[upper]
        residual = y - self._level - expected
        spread_known = self._weight[lower] + self._weight[upper] > 0
        spread = (1.0 - share) * self._spread[lower] + share * self._spread[upper]
        spread = max(spread if spread_known else abs(residual), MIN_SPREAD)
        self._smoothed += _decay(elapsed, self._smoothing_halflife_s) * (residual - self._smoothed)
        z = self._smoothed / spread
        score = 1.0 - math.exp(-max(z, 0.0) / self._score_scale)
        warmed = timestamp - self._first_time >= self._warmup_s
        quiet = timestamp - self._last_alert >= self._cooldown_s
        alert = warmed and quiet and score > 1.0 - self.sensitivity
        if alert:
            self._last_alert = timestamp
        bounded = max(-self._clip * spread, min(self._clip * spread, residual))
        self._level += _decay(elapsed, self._level_halflife_s) * bounded
        deviation = min(abs(self._smoothed), self._clip * spread) * math.sqrt(math.pi / 2.0)
        for slot, part in ((lower, 1.0 - share), (upper, share)):
            self._learn_slot(slot, part, bounded, deviation, elapsed)
        return Verdict(score=score, alert=alert)

    def _neighbours(self, timestamp: float) -> tuple[int, int, float]:
        """The two time-of-day slots around this moment and how far it lies towards the second one.

        Interpolating between slot centres keeps the expected level continuous, so the turn of a slot
        is not read as a jump in volume.
        """
        position = (timestamp % self._period_s) / self._slot_seconds - 0.5
        base = math.floor(position)
        return base % self._slots, (base + 1) % self._slots, position - base

    def _learn_slot(self, slot: int, part: float, residual: float, deviation: float, elapsed: float) -> None:
        """Running mean while a slot is new, then an exponential average with the profile's half-life."""
        if part <= 0.0:
            return
        self._weight[slot] += part
        rate = part * max(1.0 / self._weight[slot], _decay(elapsed * self._slots, self._profile_halflife_s))
        self._profile[slot] += rate * residual
        self._spread[slot] += rate * (deviation - self._spread[slot])


def detect_csv(path: Path, sensitivity: float | None = None) -> Iterator[AnomalyRecord]:
    """Score a NAB-style `timestamp,value` CSV row by row, as `civic detect-anomalies --csv` prints it."""
    detector = VolumeAnomalyDetector(sensitivity)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            moment = datetime.fromisoformat(row["timestamp"])
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            verdict = detector.update(float(row["value"]), moment.timestamp())
            yield {"timestamp": row["timestamp"], "score": verdict.score, "alert": verdict.alert}
