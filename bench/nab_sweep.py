"""Choose the anomaly detector's settings by leave-one-category-out cross-validation over NAB series.

Every combination of the grids below is scored on all 53 development series (anomalies in either
direction, NAB standard profile). For each of NAB's seven categories, the combination with the best
NAB score pooled over the *other* six categories is picked and scored on the held-out one; those
held-out figures are the estimate of how the choice generalises to series of an unseen kind. The
shipped default is the same rule applied to all 53 series. No setting is ever chosen on one series.

The residual model (the expensive part) runs once per structural combination; the alerting settings
(alert z, peak ratio, cooldown) are applied afterwards to its per-scale z, with the detector's own
calibration and alert gate, and the chosen combination is finally re-run through the online detector
to check that it reproduces the sweep's alerts exactly. One process, one core: about 10 minutes.

Run: .venv/bin/python -m bench.nab_sweep
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.nab import (
    CATEGORIES,
    MORE_DIR,
    TWEETS_DIR,
    FileResult,
    Series,
    category_table,
    detector_alerts,
    load_corpus,
    score_file,
    summary,
)
from services.common.anomaly import (
    DEFAULT_SETTINGS,
    FULL_SCALE_Z,
    AlertGate,
    default_sensitivity,
    direction_columns,
)
from services.common.anomaly_model import DetectorSettings, PeakCalibration, ResidualModel

DAY = 86_400.0
STRUCTURAL_GRID: dict[str, tuple[float, ...]] = {
    "level_halflife_s": (7 * DAY, 14 * DAY),
    "spread_floor": (0.7, 1.0),
    "spread_floor_halflife_s": (7 * DAY, 30 * DAY),
    "clip_spreads": (3.0, 4.0),
    "weekly_after_weeks": (2.0, 3.0),
    # Not below 0.15: a count that moves by less than about 1.7x is not a volume alert the product wants
    # (tests/common/test_anomaly.py holds a 40% weekend dip to that), whatever NAB's scorer would reward.
    "count_spread_floor": (0.15, 0.25),
}
ALERT_GRID: dict[str, tuple[float, ...]] = {
    "alert_z": (3.0, 3.5, 4.0),
    "peak_ratio": (1.25, 1.5, 1.75),
    "cooldown_s": (DAY / 2, DAY),
    "rearm_share": (0.3, 0.5),
}


@dataclass(frozen=True)
class Traces:
    """Per series: the non-negative evidence columns (rises then falls per scale) and their ordinary peaks."""

    columns: list[np.ndarray]
    peaks: list[np.ndarray]


def traces(series: Sequence[Series], settings: DetectorSettings) -> Traces:
    columns, peaks = [], []
    for s in series:
        model = ResidualModel(settings)
        calibration = PeakCalibration(2 * len(settings.scales_s), settings.peak_days)
        cols, pks = [], []
        for value, moment in zip(s.values.tolist(), s.seconds.tolist(), strict=True):
            both = direction_columns(model.update(value, moment), "both")
            pks.append(calibration.observe(both, moment))
            cols.append(both)
        columns.append(np.array(cols))
        peaks.append(np.array(pks))
    return Traces(columns, peaks)


def gate(seconds: np.ndarray, anomalous: np.ndarray, calm: np.ndarray, settings: DetectorSettings) -> np.ndarray:
    """The detector's alert gate over a whole series, visiting the anomalous points and the calm ones
    that fall between two of them (the only ones that can change what it admits)."""
    alerts = np.zeros(len(seconds), dtype=bool)
    admit = AlertGate(settings.warmup_s, settings.cooldown_s)
    admit.admit(float(seconds[0]), False, bool(calm[0]))
    calm_before = np.cumsum(calm)
    previous = 0
    for i in np.flatnonzero(anomalous).tolist():
        if calm_before[i] > calm_before[previous]:
            admit.admit(float(seconds[i]), False, True)  # a calm point came between: the gate re-armed
        alerts[i] = admit.admit(float(seconds[i]), True)
        previous = i
    return alerts


def alerts_from_traces(series: Sequence[Series], found: Traces, settings: DetectorSettings) -> list[np.ndarray]:
    """What VolumeAnomalyDetector(direction="both", settings=settings) alerts on, from the traces."""
    sensitivity = default_sensitivity(settings)
    out = []
    for s, cols, pks in zip(series, found.columns, found.peaks, strict=True):
        strongest = (cols / np.maximum(1.0, settings.peak_ratio * pks / settings.alert_z)).max(axis=1)
        score = np.minimum(strongest / FULL_SCALE_Z, 1.0)
        threshold = 1.0 - sensitivity
        out.append(gate(s.seconds, score >= threshold, score < settings.rearm_share * threshold, settings))
    return out


def pooled(results: Sequence[FileResult], indices: Sequence[int]) -> float:
    return summary([results[i] for i in indices]).nab


def with_values(
    settings: DetectorSettings, grid: dict[str, tuple[float, ...]], values: Sequence[float]
) -> DetectorSettings:
    overrides: dict[str, Any] = dict(zip(grid, values, strict=True))
    return replace(settings, **overrides)


def describe(settings: DetectorSettings, keys: Sequence[str] = (*STRUCTURAL_GRID, *ALERT_GRID)) -> str:
    return ", ".join(f"{k}={getattr(settings, k):g}" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tweets", type=Path, default=TWEETS_DIR)
    parser.add_argument("--more", type=Path, default=MORE_DIR)
    args = parser.parse_args()
    series = load_corpus(args.tweets, args.more)
    started = time.monotonic()
    candidates: list[tuple[DetectorSettings, list[FileResult]]] = []
    for values in itertools.product(*STRUCTURAL_GRID.values()):
        structural = with_values(DEFAULT_SETTINGS, STRUCTURAL_GRID, values)
        found = traces(series, structural)
        for alert_values in itertools.product(*ALERT_GRID.values()):
            settings = with_values(structural, ALERT_GRID, alert_values)
            alerts = alerts_from_traces(series, found, settings)
            results = [score_file(len(s.values), s.windows, a) for s, a in zip(series, alerts, strict=True)]
            candidates.append((settings, results))
        elapsed = time.monotonic() - started
        print(f"  {describe(structural, tuple(STRUCTURAL_GRID))}: done at {elapsed:.0f} s", flush=True)
    print(f"\n{len(candidates)} combinations scored on {len(series)} series")

    def best(indices: Sequence[int]) -> int:
        return max(range(len(candidates)), key=lambda c: pooled(candidates[c][1], indices))

    held_out: list[FileResult | None] = [None] * len(series)
    print("\nleave one category out: settings picked on the other six categories, scored on the held-out one")
    for category in CATEGORIES:
        inside = [i for i, s in enumerate(series) if s.category == category]
        training = [i for i, s in enumerate(series) if s.category != category]
        pick = best(training)
        settings, results = candidates[pick]
        for i in inside:
            held_out[i] = results[i]
        s = summary([results[i] for i in inside])
        shown = f"NAB {s.nab:.1f}" if s.windows else f"raw {s.raw:.2f}"
        print(f"  {category:<22} training NAB {pooled(results, training):.1f}; held out {shown}, "
              f"recall {s.found}/{s.windows}, {s.false_alerts} false alerts; picked {describe(settings)}")
    category_table("held-out figures (each category scored with settings chosen without it)", series,
                   [r for r in held_out if r is not None])

    pick = best(range(len(series)))
    shipped, results = candidates[pick]
    print(f"\nchosen on all 53 series (the shipped default): {describe(shipped)}")
    category_table("the chosen settings on all 53 series (in-sample)", series, results)
    ranked = sorted(range(len(candidates)), key=lambda c: -pooled(candidates[c][1], range(len(series))))
    print("\nthe ten best combinations on all 53 series")
    for c in ranked[:10]:
        s = summary(candidates[c][1])
        print(f"  NAB {s.nab:5.1f}  recall {s.recall:.2f}  FA/1k {s.false_per_1k:.2f}  {describe(candidates[c][0])}")

    alerts = alerts_from_traces(series, traces(series, shipped), shipped)
    online = [detector_alerts(s, "both", settings=shipped) for s in series]
    same = all(np.array_equal(a, b) for a, b in zip(alerts, online, strict=True))
    print(f"\nthe online detector with these settings reproduces the sweep's alerts: {'yes' if same else 'NO'}")
    if shipped != DEFAULT_SETTINGS:
        print("NOTE: services/common/anomaly_model.py's DetectorSettings defaults differ from this choice")


if __name__ == "__main__":
    main()
