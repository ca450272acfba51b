"""The parts of the volume anomaly detector: the expected volume, the residual at several time scales,
the calibration of each scale against the series' own ordinary peaks, and the record range of the
values themselves.

Everything here is an online update of a fixed-size state, so a detector costs the same after a year of
points as after a day, and pickles into a few kilobytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400.0
HOURS_PER_DAY = 24
HOURS_PER_WEEK = 7 * HOURS_PER_DAY
MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2.0)
# Days of calibration history needed before a scale's ordinary peak is trusted.
MIN_PEAK_DAYS = 3


@dataclass(frozen=True)
class DetectorSettings:
    """Every setting of the detector; the shipped values are chosen by bench/nab_sweep.py."""

    # Baseline: a slowly moving level plus a time-of-day profile, and a time-of-week one once enough
    # weeks were seen to know each hour of the week.
    level_halflife_s: float = 7 * SECONDS_PER_DAY
    profile_halflife_days: float = 3.0
    weekly_after_weeks: float = 2.0
    weekly_halflife_weeks: float = 3.0
    # Half-lives of the residual's moving averages: a burst, an afternoon's rise, a level shift.
    scales_s: tuple[float, ...] = (300.0, 3_600.0, 21_600.0)
    # Smallest spread of a scale, as a share of its long-run mean deviation: the steadiest hours must
    # not turn an ordinary wobble into a huge z.
    spread_floor: float = 1.0
    spread_floor_halflife_s: float = 30 * SECONDS_PER_DAY
    # Smallest spread on the log scale while every value seen is a whole non-negative number (a count):
    # a change in volume has to be large as well as unusual to be worth an alert.
    count_spread_floor: float = 0.15
    # Residuals beyond this many spreads are clipped before they are learnt.
    clip_spreads: float = 3.0
    # A residual that stays this far out on the longest scale for this long is a new level, not an event.
    shift_z: float = 4.0
    shift_s: float = 21_600.0
    # Alerting: the calibrated z that alerts at the default sensitivity; how far above its ordinary
    # daily peak (the median of the last `peak_days` daily maxima) a scale must go to count.
    alert_z: float = 3.5
    peak_ratio: float = 1.65
    peak_days: int = 14
    cooldown_s: float = SECONDS_PER_DAY / 2
    # After an alert, the score must fall below this share of the alert threshold before the next one.
    rearm_share: float = 0.3
    warmup_s: float = SECONDS_PER_DAY
    # The shortest scale counts on a row only when it already stood at this share of alert_z on the row
    # before: a burst lasts, a one-row blip of a noisy series does not (0: every row counts).
    burst_confirm_share: float = 0.3
    # Records: a value beyond the extremes of the last `record_days` (UTC) days by `record_margin` of
    # their range reaches alert_z, whatever the residual says (a new plateau, a noise burst).
    record_days: int = 84
    record_margin: float = 0.1
    # Trimmed records: the same against the range from the `trimmed_record_rank`-th highest daily high to
    # the as many-th lowest daily low, by `trimmed_record_margin` of it, so one or two extreme days (often
    # anomalies themselves) do not hide every later record for `record_days` (inf: off).
    trimmed_record_rank: int = 3
    trimmed_record_margin: float = 0.5


def decay(elapsed_s: float, halflife_s: float) -> float:
    """Weight given to a new observation by an exponential average with the given half-life."""
    return 1.0 - math.pow(0.5, elapsed_s / halflife_s)


class CyclicProfile:
    """A value per position in a cycle (a day, a week), held as slot values interpolated between centres.

    Interpolation keeps the profile continuous, so the turn of a slot is not read as a jump in volume.
    A slot learns as a running mean while it is new, then as an exponential average over
    `halflife_cycles` visits, so it is usable after one cycle yet keeps following slow change.
    """

    def __init__(self, period_s: float, slots: int, halflife_cycles: float) -> None:
        self._period_s = period_s
        self._slot_s = period_s / slots
        self._halflife_s = halflife_cycles * period_s
        self.values = [0.0] * slots
        self.weights = [0.0] * slots

    def _neighbours(self, timestamp: float) -> tuple[int, int, float]:
        position = (timestamp % self._period_s) / self._slot_s - 0.5
        base = math.floor(position)
        slots = len(self.values)
        return base % slots, (base + 1) % slots, position - base

    def known(self, timestamp: float) -> bool:
        lower, upper, _ = self._neighbours(timestamp)
        return self.weights[lower] > 0 or self.weights[upper] > 0

    def at(self, timestamp: float) -> float:
        lower, upper, share = self._neighbours(timestamp)
        return (1.0 - share) * self.values[lower] + share * self.values[upper]

    def nudge(self, timestamp: float, error: float, elapsed_s: float) -> None:
        """Move the slots around `timestamp` by `error`, each in proportion to its share."""
        lower, upper, share = self._neighbours(timestamp)
        visit_rate = decay(elapsed_s * len(self.values), self._halflife_s)
        for slot, part in ((lower, 1.0 - share), (upper, share)):
            if part > 0.0:
                self.weights[slot] += part
                self.values[slot] += part * max(1.0 / self.weights[slot], visit_rate) * error


def transform(value: float) -> float:
    """Log scale, sign kept: bursts are multiplicative and count noise grows with the count."""
    return math.copysign(math.log1p(abs(value)), value)


class ResidualModel:
    """Expected volume and how far the series sits from it, as a z per time scale (signed: + is above).

    The expected value is level + daily profile (+ weekly profile once `weekly_after_weeks` have passed).
    Each scale's spread is learnt per hour of the day, floored at `spread_floor` times its long-run
    mean, so noisy night hours of a small series do not alert and steady hours do not over-alert.
    """

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        scales = len(settings.scales_s)
        self._daily = CyclicProfile(SECONDS_PER_DAY, HOURS_PER_DAY, settings.profile_halflife_days)
        self._weekly = CyclicProfile(7 * SECONDS_PER_DAY, HOURS_PER_WEEK, settings.weekly_halflife_weeks)
        self._spreads = [
            CyclicProfile(SECONDS_PER_DAY, HOURS_PER_DAY, settings.profile_halflife_days) for _ in range(scales)
        ]
        self._long_run = [0.0] * scales
        self._means = [0.0] * scales
        self._points = 0
        self._level = math.nan
        self._first_time = math.nan
        self._last_time = math.nan
        self._shift_since = math.nan
        self._counts = True

    def update(self, value: float, timestamp: float) -> list[float]:
        """The z of each scale for this point (scored before the point is learnt)."""
        s = self.settings
        y = transform(value)
        if math.isnan(self._level):
            self._level, self._first_time, self._last_time = y, timestamp, timestamp
        elapsed = max(timestamp - self._last_time, 1.0)
        self._last_time = timestamp
        weekly = self._weekly.at(timestamp)
        weekly_on = timestamp - self._first_time >= s.weekly_after_weeks * 7 * SECONDS_PER_DAY
        residual = y - self._level - self._daily.at(timestamp) - (weekly if weekly_on else 0.0)
        self._points += 1
        floor_rate = max(1.0 / self._points, decay(elapsed, s.spread_floor_halflife_s))
        self._counts = self._counts and value >= 0 and value == math.floor(value)
        least = max(1e-6 * (1.0 + abs(self._level)), s.count_spread_floor if self._counts else 0.0)
        zs = []
        spreads = []
        for k, halflife in enumerate(s.scales_s):
            mean = self._means[k] + decay(elapsed, halflife) * (residual - self._means[k])
            self._means[k] = mean
            profile = self._spreads[k]
            learnt = profile.at(timestamp)
            spread = max(learnt if profile.known(timestamp) else abs(mean), s.spread_floor * self._long_run[k], least)
            zs.append(mean / spread)
            spreads.append(spread)
            deviation = min(abs(mean), s.clip_spreads * spread) * MEAN_ABS_TO_SIGMA
            profile.nudge(timestamp, deviation - learnt, elapsed)
            self._long_run[k] += floor_rate * (deviation - self._long_run[k])
        bound = s.clip_spreads * spreads[0]
        clipped = max(-bound, min(bound, residual))
        self._level += decay(elapsed, s.level_halflife_s) * clipped
        self._daily.nudge(timestamp, clipped, elapsed)
        # The weekly profile learns what the level and the daily profile leave.
        left = y - self._level - self._daily.at(timestamp) - weekly
        self._weekly.nudge(timestamp, max(-bound, min(bound, left)), elapsed)
        self._follow_shift(zs[-1], timestamp)
        return zs

    def _follow_shift(self, long_z: float, timestamp: float) -> None:
        """Accept a lasting change of level: move the level to it, so the detector is calm again and can
        report the next event on the new level instead of holding on to this one for days."""
        if abs(long_z) < self.settings.shift_z:
            self._shift_since = math.nan
        elif math.isnan(self._shift_since):
            self._shift_since = timestamp
        elif timestamp - self._shift_since >= self.settings.shift_s:
            middle = len(self._means) // 2
            shift = self._means[middle]
            self._level += shift
            self._means = [m - shift if k <= middle else 0.0 for k, m in enumerate(self._means)]
            self._shift_since = math.nan


class PeakCalibration:
    """Each column's ordinary daily peak: the median of its last `days` (UTC) daily maxima.

    A series that spikes every day (a batch job, a load balancer) should alert on a spike out of the
    ordinary for it, not on its daily spike; a calm one should alert on its first clear burst. The ring
    of daily maxima is fixed-size, so the state stays bounded.
    """

    def __init__(self, columns: int, days: int) -> None:
        self._rings = [[0.0] * days for _ in range(columns)]
        self._filled = 0
        self._next = 0
        self._day: int | None = None
        self._day_max = [0.0] * columns
        self.peaks = [0.0] * columns

    def observe(self, values: list[float], timestamp: float) -> list[float]:
        """The ordinary peak of each column in force at `timestamp`, then `values` join today's maxima."""
        day = int(timestamp // SECONDS_PER_DAY)
        if day != self._day:
            if self._day is not None:
                self._close_day()
            self._day = day
            self._day_max = [0.0] * len(values)
        peaks = list(self.peaks)
        self._day_max = [max(m, v) for m, v in zip(self._day_max, values, strict=True)]
        return peaks

    def _close_day(self) -> None:
        days = len(self._rings[0])
        for ring, peak in zip(self._rings, self._day_max, strict=True):
            ring[self._next] = peak
        self._next = (self._next + 1) % days
        self._filled = min(self._filled + 1, days)
        if self._filled >= MIN_PEAK_DAYS:
            self.peaks = [sorted(ring[: self._filled])[self._filled // 2] for ring in self._rings]


class RecordRange:
    """How far a value lies beyond the highest and lowest values of the last `days` UTC days, as a share
    of their range (0 inside it); and the same against the range trimmed of its `rank - 1` most extreme
    days at either end.

    The residual model measures a value against what is expected at that hour; this measures it against
    what the series has ever done lately. Series whose anomalies are a first-ever level (a disk filling,
    a machine stuck at full load, a traffic jam on a road that never jams) pass unseen by the first,
    because their spread grows with their own wandering. Raw values, not logs: a record is a record
    on any scale. The rings of daily extremes are fixed-size, so the state stays bounded.
    """

    def __init__(self, days: int, rank: int = 1) -> None:
        self._highs = [-math.inf] * days
        self._lows = [math.inf] * days
        self._rank = rank
        self._next = 0
        self._filled = 0
        self._day: int | None = None
        self._high = -math.inf
        self._low = math.inf
        self._past = (-math.inf, math.inf)
        self._trimmed = (-math.inf, math.inf)

    def observe(self, value: float, timestamp: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """((share above, share below) the full range, the same for the trimmed one) of `value`, then it
        joins today's extremes."""
        day = int(timestamp // SECONDS_PER_DAY)
        if day != self._day:
            if self._day is not None:
                self._close_day()
            self._day, self._high, self._low = day, -math.inf, math.inf
        full, trimmed = self._beyond(value, self._past), self._beyond(value, self._trimmed)
        self._high, self._low = max(self._high, value), min(self._low, value)
        return full, trimmed

    def _close_day(self) -> None:
        self._highs[self._next], self._lows[self._next] = self._high, self._low
        self._next = (self._next + 1) % len(self._highs)
        self._filled = min(self._filled + 1, len(self._highs))
        self._past = (max(self._highs), min(self._lows))
        if self._filled > self._rank:
            highs, lows = sorted(self._highs[: self._filled]), sorted(self._lows[: self._filled])
            self._trimmed = (highs[-self._rank], lows[self._rank - 1])
        else:
            self._trimmed = self._past

    def _beyond(self, value: float, extremes: tuple[float, float]) -> tuple[float, float]:
        top, bottom = max(self._high, extremes[0]), min(self._low, extremes[1])
        width = top - bottom
        if not 0.0 < width < math.inf:
            return 0.0, 0.0
        return max(value - top, 0.0) / width, max(bottom - value, 0.0) / width


def record_z(share: float, margin: float, settings: DetectorSettings) -> float:
    """A RecordRange share on the calibrated z scale: `margin` of the range reaches alert_z."""
    return settings.alert_z * share / margin


def calibrated(z: float, peak: float, settings: DetectorSettings) -> float:
    """z scaled so that `alert_z` is reached when z clears both alert_z and peak_ratio x the ordinary peak."""
    return z / max(1.0, settings.peak_ratio * peak / settings.alert_z)
