"""NAB benchmark for the volume anomaly detector on the realTweets development series.

The scorer follows NAB's published method (v1.1 sweeper): rows in the probationary period are ignored,
each labelled window is worth its first detection weighted by a scaled sigmoid of its relative position,
false positives are weighted by their distance past the preceding window, and the summed raw score is
normalised so the null detector scores 0 and the perfect detector 100.

Run: .venv/bin/python bench/nab.py [--data DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from services.alerting.anomaly import DEFAULT_SENSITIVITY, MIN_SPREAD, VolumeAnomalyDetector

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "anomaly" / "nab"
PROBATION_PERCENT = 0.15
SECONDS_PER_ROW = 300
MAD_TO_SIGMA = 1.4826  # makes the MAD a consistent estimate of a normal standard deviation


@dataclass(frozen=True)
class Profile:
    tp_weight: float
    fp_weight: float
    fn_weight: float


STANDARD_PROFILE = Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)


@dataclass(frozen=True)
class Series:
    name: str
    timestamps: list[str]
    values: np.ndarray
    windows: list[tuple[int, int]]  # inclusive row-index ranges


@dataclass(frozen=True)
class FileResult:
    raw_score: float
    null_score: float
    perfect_score: float
    windows: int
    windows_detected: int
    false_alerts: int
    scored_points_outside: int
    first_alert_positions: list[float]  # share of the window elapsed at the first alert, detected windows only


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's reward curve: ~+1 at a window's left edge, 0 at its right edge, -> -1 far past it."""
    if relative_position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probation_length(rows: int) -> int:
    """NAB ignores the first 15% of a file, capped at 15% of 5000 rows, so detectors can warm up."""
    return int(min(math.floor(PROBATION_PERCENT * rows), PROBATION_PERCENT * 5000))


def score_file(
    rows: int, windows: Sequence[tuple[int, int]], alerts: np.ndarray, profile: Profile = STANDARD_PROFILE
) -> FileResult:
    """Raw NAB score of one file's boolean alerts, plus the counts the benchmark reports beside it."""
    probation = probation_length(rows)
    max_tp = scaled_sigmoid(-1.0)
    window_of_row = np.full(rows, -1, dtype=np.int64)
    for k, (start, end) in enumerate(windows):
        window_of_row[start : end + 1] = k
    scorable = [k for k, (_, end) in enumerate(windows) if end >= probation]
    best = {k: -profile.fn_weight for k in scorable}
    first_positions: dict[int, float] = {}
    fp_score = 0.0
    false_alerts = 0
    previous_window: tuple[int, int] | None = None
    window_iter = 0
    for i in np.flatnonzero(alerts):
        if i < probation:
            continue
        k = int(window_of_row[i])
        if k >= 0:
            start, end = windows[k]
            width = end - start + 1
            position = -(end - i + 1) / width
            best[k] = max(best[k], scaled_sigmoid(position) * profile.tp_weight / max_tp)
            first_positions.setdefault(k, (i - start) / width)
            continue
        while window_iter < len(windows) and windows[window_iter][1] < i:
            previous_window = windows[window_iter]
            window_iter += 1
        false_alerts += 1
        if previous_window is None:
            fp_score += -1.0 * profile.fp_weight
        else:
            start, end = previous_window
            width = end - start + 1
            fp_score += scaled_sigmoid(abs(end - i) / (width - 1)) * profile.fp_weight
    inside = int(np.count_nonzero(window_of_row[probation:] >= 0))
    return FileResult(
        raw_score=sum(best.values()) + fp_score,
        null_score=-profile.fn_weight * len(scorable),
        perfect_score=profile.tp_weight * len(windows),
        windows=len(scorable),
        windows_detected=len(first_positions),
        false_alerts=false_alerts,
        scored_points_outside=rows - probation - inside,
        first_alert_positions=[first_positions[k] for k in sorted(first_positions)],
    )


def normalised_score(results: Sequence[FileResult]) -> float:
    """NAB's final score: 100 * (raw - null) / (perfect - null), each summed over the files."""
    raw = sum(r.raw_score for r in results)
    null = sum(r.null_score for r in results)
    perfect = sum(r.perfect_score for r in results)
    return 100.0 * (raw - null) / (perfect - null)


def load_series(data_dir: Path) -> list[Series]:
    labels = json.loads((data_dir / "windows.json").read_text())
    series = []
    for key in sorted(labels):
        path = data_dir / Path(key).name
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        timestamps = [row["timestamp"] for row in rows]
        moments = [datetime.fromisoformat(t) for t in timestamps]
        windows = []
        for start, end in labels[key]:
            first = next(i for i, m in enumerate(moments) if m >= datetime.fromisoformat(start))
            last = max(i for i, m in enumerate(moments) if m <= datetime.fromisoformat(end))
            windows.append((first, last))
        values = np.array([float(row["value"]) for row in rows])
        series.append(Series(Path(key).stem.removeprefix("Twitter_volume_"), timestamps, values, windows))
    return series


def baseline_alerts(values: np.ndarray) -> np.ndarray:
    """The reference baseline: robust z of log volume vs the trailing day's median/MAD, > 4, one-day cooldown."""
    day = 24 * 3600 // SECONDS_PER_ROW
    history: deque[float] = deque(maxlen=day)
    alerts = np.zeros(len(values), dtype=bool)
    last_alert = -day
    for i, value in enumerate(np.log1p(values)):
        if len(history) == day and i - last_alert >= day:
            centre = median(history)
            spread = MAD_TO_SIGMA * median(abs(h - centre) for h in history) or 1e-9
            if (value - centre) / spread > 4:
                alerts[i] = True
                last_alert = i
        history.append(float(value))
    return alerts


def detector_alerts(series: Series, sensitivity: float, **settings: Any) -> np.ndarray:
    detector = VolumeAnomalyDetector(sensitivity, **settings)
    moments = (datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp() for t in series.timestamps)
    return np.array([detector.update(float(v), m).alert for v, m in zip(series.values, moments, strict=True)])


def evaluate(series: Sequence[Series], alerts_of: Callable[[Series], np.ndarray]) -> list[FileResult]:
    return [score_file(len(s.values), s.windows, alerts_of(s)) for s in series]


def summary(results: Sequence[FileResult]) -> tuple[float, float, float]:
    """NAB standard score, windowed recall and false alerts per 1,000 scored points outside windows."""
    windows = sum(r.windows for r in results)
    outside = sum(r.scored_points_outside for r in results)
    recall = sum(r.windows_detected for r in results) / windows
    return normalised_score(results), recall, 1000.0 * sum(r.false_alerts for r in results) / outside


def print_table(title: str, names: Sequence[str], results: Sequence[FileResult]) -> None:
    print(f"\n{title}")
    columns = f"{'series':<8}{'NAB':>7}{'recall':>8}{'found':>7}{'false':>7}{'FA/1k':>7}"
    header = f"{columns}  first alert (share of window elapsed)"
    print(header)
    print("-" * len(header))
    for name, r in zip([*names, "overall"], [*[[r] for r in results], list(results)], strict=True):
        nab, recall, false_rate = summary(r)
        positions = [p for f in r for p in f.first_alert_positions]
        found = f"{sum(f.windows_detected for f in r)}/{sum(f.windows for f in r)}"
        shown = " ".join(f"{p:.2f}" for p in positions) if name != "overall" else f"mean {np.mean(positions):.2f}"
        false_alerts = sum(f.false_alerts for f in r)
        print(f"{name:<8}{nab:>7.1f}{recall:>8.2f}{found:>7}{false_alerts:>7}{false_rate:>7.2f}  {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    series = load_series(args.data)
    names = [s.name for s in series]
    print(
        f"NAB standard profile (tp {STANDARD_PROFILE.tp_weight}, fp {STANDARD_PROFILE.fp_weight}, "
        f"fn {STANDARD_PROFILE.fn_weight}); probation {PROBATION_PERCENT:.0%} of rows, at most 750"
    )
    print_table(
        "baseline: robust z of log volume vs trailing-day median/MAD > 4, one-day cooldown",
        names,
        evaluate(series, baseline_alerts_of),
    )
    print_table(
        f"volume detector, default sensitivity {DEFAULT_SENSITIVITY}",
        names,
        evaluate(series, partial(detector_alerts, sensitivity=DEFAULT_SENSITIVITY)),
    )

    sweep = {q: evaluate(series, partial(detector_alerts, sensitivity=q)) for q in SENSITIVITY_GRID}
    print("\nsensitivity sweep (all five series)")
    print(f"{'sens.':<8}{'NAB':>7}{'recall':>8}{'FA/1k':>7}")
    for q, results in sweep.items():
        nab, recall, false_rate = summary(results)
        print(f"{q:<8.2f}{nab:>7.1f}{recall:>8.2f}{false_rate:>7.2f}")

    chosen_on_all = choose_sensitivity(sweep, range(len(series)))
    print(f"rule applied to all five series picks {chosen_on_all:.2f} (the default is {DEFAULT_SENSITIVITY})")

    print("\nleave one series out: sensitivity picked by the same rule on the other four, scored on the fifth")
    held_out = []
    for k, name in enumerate(names):
        chosen = choose_sensitivity(sweep, [j for j in range(len(series)) if j != k])
        held_out.append(sweep[chosen][k])
        print(f"  {name:<6} picked {chosen:.2f}")
    print_table("held-out results", names, held_out)

    print(f"\nrobustness: each structural setting halved and doubled, sensitivity {DEFAULT_SENSITIVITY}")
    print(f"{'setting':<34}{'NAB':>7}{'recall':>8}{'FA/1k':>7}")
    for setting, default in STRUCTURAL_DEFAULTS.items():
        for factor in (0.5, 2.0):
            varied = {setting: default * factor}
            results = [
                score_file(len(s.values), s.windows, detector_alerts(s, DEFAULT_SENSITIVITY, **varied)) for s in series
            ]
            nab, recall, false_rate = summary(results)
            print(f"{f'{setting} = {default * factor:g}':<34}{nab:>7.1f}{recall:>8.2f}{false_rate:>7.2f}")


def choose_sensitivity(sweep: dict[float, list[FileResult]], series_indices: Iterable[int]) -> float:
    """Best NAB score averaged with the two neighbouring settings: a plateau, not a lucky spike.

    With a dozen labelled windows one window is worth several points, so the plain maximum tends to sit
    on the edge of a cliff; the neighbourhood average prefers a setting whose neighbours also do well.
    """
    indices = list(series_indices)
    grid = sorted(sweep)
    nab = [summary([sweep[q][i] for i in indices])[0] for q in grid]
    smoothed = [np.mean(nab[max(k - 1, 0) : k + 2]) for k in range(len(grid))]
    return grid[int(np.argmax(smoothed))]


def baseline_alerts_of(series: Series) -> np.ndarray:
    return baseline_alerts(series.values)


STRUCTURAL_DEFAULTS = {
    "level_halflife_s": 2 * 86_400.0,
    "profile_halflife_days": 3.0,
    "smoothing_halflife_s": 300.0,
    "min_spread": MIN_SPREAD,
}
SENSITIVITY_GRID = tuple(round(0.48 + 0.02 * k, 2) for k in range(11))  # alert at z from 5.2 down to 3.2

if __name__ == "__main__":
    main()
