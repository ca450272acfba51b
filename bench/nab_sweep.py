"""Choose the anomaly detector's settings by leave-one-category-out cross-validation over NAB series.

Every combination of the grids below is scored on all 53 development series (anomalies in either
direction, NAB standard profile). For each of NAB's seven categories, the combination with the best
NAB score pooled over the *other* six categories is picked and scored on the held-out one; those
held-out figures are the estimate of how the choice generalises to series of an unseen kind. The
shipped default is the same rule applied to all 53 series. No setting is ever chosen on one series.

The residual model (the expensive part) runs once per structural combination, the record range once
per number of days; the alerting and record settings are applied afterwards to the per-scale z and
the record shares, with the detector's own calibration and alert gate. Every pick is finally re-run
through the online detector, which must reproduce the sweep's scores exactly. Two processes, one per
core: about 25 minutes.

Run: .venv/bin/python -m bench.nab_sweep
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing import Pool
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
from services.common.anomaly_model import DetectorSettings, PeakCalibration, RecordRange, ResidualModel, record_z

DAY = 86_400.0
STRUCTURAL_GRID: dict[str, tuple[float, ...]] = {
    "level_halflife_s": (7 * DAY, 14 * DAY),
    "spread_floor": (0.7, 1.0),
    "spread_floor_halflife_s": (7 * DAY, 30 * DAY),
    # Not above 3: at 4 a level shift leaves the score above the re-arm line for days, so a burst on
    # the new level goes unreported (tests/common/test_anomaly.py holds that), whatever NAB rewards.
    "clip_spreads": (3.0,),
    "weekly_after_weeks": (2.0, 3.0),
    # Not below 0.15: a count that moves by less than about 1.7x is not a volume alert the product wants
    # (tests/common/test_anomaly.py holds a 40% weekend dip to that), whatever NAB's scorer would reward.
    "count_spread_floor": (0.15, 0.25),
}
ALERT_GRID: dict[str, tuple[float, ...]] = {
    "alert_z": (3.0, 3.5, 4.0),
    "peak_ratio": (1.25, 1.4, 1.45, 1.5, 1.55, 1.6, 1.65, 1.7, 1.75, 1.8),
    "cooldown_s": (DAY / 2, DAY),
    "rearm_share": (0.3, 0.5),
}
# A record margin of inf turns the record column off, so the cross-validation may also choose none.
RECORD_GRID: dict[str, tuple[float, ...]] = {
    "record_days": (7, 14, 28, 56, 84, 112),
    "record_margin": (0.05, 0.1, 0.15, 0.25, math.inf),
}
EVERY_KEY = (*STRUCTURAL_GRID, *ALERT_GRID, *RECORD_GRID)


@dataclass(frozen=True)
class Traces:
    """Per series: the non-negative evidence columns (rises then falls per scale) and their ordinary peaks."""

    columns: list[np.ndarray]
    peaks: list[np.ndarray]


@dataclass(frozen=True)
class Scores:
    """One combination's figures per file: raw NAB score, windows found, false alerts."""

    settings: DetectorSettings
    raw: np.ndarray
    found: np.ndarray
    false_alerts: np.ndarray


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


def record_shares(series: Sequence[Series], days: int) -> list[np.ndarray]:
    """Per series and row, how far the value lies beyond the last `days` days' range, either way."""
    shares = []
    for s in series:
        records = RecordRange(days)
        shares.append(np.array([
            max(records.observe(value, moment))
            for value, moment in zip(s.values.tolist(), s.seconds.tolist(), strict=True)
        ]))
    return shares


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


def alerts_from_traces(
    series: Sequence[Series], found: Traces, records: Sequence[np.ndarray], settings: DetectorSettings
) -> list[np.ndarray]:
    """What VolumeAnomalyDetector(direction="both", settings=settings) alerts on, from the traces and the
    record shares of `settings.record_days`."""
    sensitivity = default_sensitivity(settings)
    out = []
    for s, cols, pks, shares in zip(series, found.columns, found.peaks, records, strict=True):
        strongest = (cols / np.maximum(1.0, settings.peak_ratio * pks / settings.alert_z)).max(axis=1)
        strongest = np.maximum(strongest, record_z(1.0, settings) * shares)
        score = np.minimum(strongest / FULL_SCALE_Z, 1.0)
        threshold = 1.0 - sensitivity
        out.append(gate(s.seconds, score >= threshold, score < settings.rearm_share * threshold, settings))
    return out


def with_values(
    settings: DetectorSettings, grid: dict[str, tuple[float, ...]], values: Sequence[float]
) -> DetectorSettings:
    overrides: dict[str, Any] = dict(zip(grid, values, strict=True))
    return replace(settings, **overrides)


def describe(settings: DetectorSettings, keys: Sequence[str] = EVERY_KEY) -> str:
    return ", ".join(f"{k}={getattr(settings, k):g}" for k in keys)


def scores_of(settings: DetectorSettings, results: Sequence[FileResult]) -> Scores:
    return Scores(
        settings,
        np.array([r.raw_score for r in results]),
        np.array([r.windows_detected for r in results]),
        np.array([r.false_alerts for r in results]),
    )


_SERIES: list[Series] = []
_RECORDS: dict[int, list[np.ndarray]] = {}


def _share(series: list[Series], records: dict[int, list[np.ndarray]]) -> None:
    global _SERIES, _RECORDS
    _SERIES, _RECORDS = series, records


def score_structural(values: Sequence[float]) -> list[Scores]:
    """Every alert and record combination on one structural combination (a worker's unit of work)."""
    structural = with_values(DEFAULT_SETTINGS, STRUCTURAL_GRID, values)
    found = traces(_SERIES, structural)
    scored = []
    for alert_values in itertools.product(*ALERT_GRID.values()):
        alerting = with_values(structural, ALERT_GRID, alert_values)
        for record_values in itertools.product(*RECORD_GRID.values()):
            settings = with_values(alerting, RECORD_GRID, record_values)
            alerts = alerts_from_traces(_SERIES, found, _RECORDS[settings.record_days], settings)
            results = [score_file(len(s.values), s.windows, a) for s, a in zip(_SERIES, alerts, strict=True)]
            scored.append(scores_of(settings, results))
    return scored


class Sweep:
    """Every combination's per-file figures, and the pick of the best pooled NAB score on a set of files."""

    def __init__(self, series: Sequence[Series], candidates: list[Scores]) -> None:
        empty = [score_file(len(s.values), s.windows, np.zeros(len(s.values), dtype=bool)) for s in series]
        self.null = np.array([r.null_score for r in empty])
        self.perfect = np.array([r.perfect_score for r in empty])
        self.windows = np.array([r.windows for r in empty])
        self.outside = np.array([r.scored_points_outside for r in empty])
        self.candidates = candidates
        self.raw = np.array([c.raw for c in candidates])
        self.found = np.array([c.found for c in candidates])
        self.false_alerts = np.array([c.false_alerts for c in candidates])

    def nab(self, indices: Sequence[int]) -> np.ndarray:
        """Each combination's NAB score pooled over `indices` (the scorer's normalisation, vectorised)."""
        ix = list(indices)
        null, perfect = self.null[ix].sum(), self.perfect[ix].sum()
        return 100.0 * (self.raw[:, ix].sum(axis=1) - null) / (perfect - null)

    def best(self, indices: Sequence[int]) -> Scores:
        return self.candidates[int(np.argmax(self.nab(indices)))]

    def recall(self, indices: Sequence[int]) -> np.ndarray:
        ix = list(indices)
        return self.found[:, ix].sum(axis=1) / self.windows[ix].sum()

    def false_per_1k(self, indices: Sequence[int]) -> np.ndarray:
        ix = list(indices)
        return 1000.0 * self.false_alerts[:, ix].sum(axis=1) / self.outside[ix].sum()


def operating_points(sweep: Sweep, indices: Sequence[int], recall: float, false_per_1k: float) -> None:
    """Whether any combination of the grid reaches the recall and false-alert target together, and what
    each half of it costs on its own (in-sample: these are not picks, only the grid's trade-off)."""
    nab, found, false = sweep.nab(indices), sweep.recall(indices), sweep.false_per_1k(indices)
    print(f"\noperating points of the grid on all {len(list(indices))} series "
          f"(target: recall >= {recall} at <= {false_per_1k} false alerts per 1,000)")
    both = np.flatnonzero((found >= recall) & (false <= false_per_1k))
    print(f"  combinations meeting both: {len(both)}")
    halves = (
        (f"best NAB with <= {false_per_1k} FA/1k", false <= false_per_1k),
        (f"best NAB with recall >= {recall}", found >= recall),
    )
    for label, allowed in halves:
        if not allowed.any():
            print(f"  {label}: none")
            continue
        c = int(np.argmax(np.where(allowed, nab, -np.inf)))
        print(f"  {label}: NAB {nab[c]:.1f}, recall {found[c]:.3f}, {false[c]:.2f} FA/1k; "
              f"{describe(sweep.candidates[c].settings)}")


def online_results(series: Sequence[Series], settings: DetectorSettings, sweep: Scores) -> list[FileResult]:
    """The online detector's results with `settings`; they must equal the sweep's figures."""
    results = [score_file(len(s.values), s.windows, detector_alerts(s, "both", settings=settings)) for s in series]
    if not np.allclose(scores_of(settings, results).raw, sweep.raw, rtol=0.0, atol=1e-9):
        raise SystemExit(f"the online detector does not reproduce the sweep's scores with {describe(settings)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tweets", type=Path, default=TWEETS_DIR)
    parser.add_argument("--more", type=Path, default=MORE_DIR)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    series = load_corpus(args.tweets, args.more)
    started = time.monotonic()
    records = {int(days): record_shares(series, int(days)) for days in RECORD_GRID["record_days"]}
    candidates: list[Scores] = []
    structural_values = list(itertools.product(*STRUCTURAL_GRID.values()))
    with Pool(args.processes, initializer=_share, initargs=(series, records)) as pool:
        for values, scored in zip(structural_values, pool.imap(score_structural, structural_values), strict=True):
            candidates.extend(scored)
            structural = with_values(DEFAULT_SETTINGS, STRUCTURAL_GRID, values)
            print(f"  {describe(structural, tuple(STRUCTURAL_GRID))}: done at {time.monotonic() - started:.0f} s",
                  flush=True)
    sweep = Sweep(series, candidates)
    print(f"\n{len(candidates)} combinations scored on {len(series)} series")

    held_out: list[FileResult | None] = [None] * len(series)
    print("\nleave one category out: settings picked on the other six categories, scored on the held-out one")
    for category in CATEGORIES:
        inside = [i for i, s in enumerate(series) if s.category == category]
        training = [i for i, s in enumerate(series) if s.category != category]
        pick = sweep.best(training)
        results = online_results(series, pick.settings, pick)
        for i in inside:
            held_out[i] = results[i]
        s = summary([results[i] for i in inside])
        shown = f"NAB {s.nab:.1f}" if s.windows else f"raw {s.raw:.2f}"
        print(f"  {category:<22} training NAB {summary([results[i] for i in training]).nab:.1f}; held out "
              f"{shown}, recall {s.found}/{s.windows}, {s.false_alerts} false alerts; picked {describe(pick.settings)}")
    category_table("held-out figures (each category scored with settings chosen without it)", series,
                   [r for r in held_out if r is not None])

    everything = range(len(series))
    shipped = sweep.best(everything)
    print(f"\nchosen on all 53 series (the shipped default): {describe(shipped.settings)}")
    category_table("the chosen settings on all 53 series (in-sample)", series,
                   online_results(series, shipped.settings, shipped))
    print("\nthe ten best combinations on all 53 series")
    nab, recall = sweep.nab(everything), sweep.recall(everything)
    for c in np.argsort(-nab)[:10].tolist():
        candidate = candidates[c]
        print(f"  NAB {nab[c]:5.1f}  recall {recall[c]:.3f}  "
              f"false alerts {candidate.false_alerts.sum()}  {describe(candidate.settings)}")
    operating_points(sweep, everything, recall=0.9, false_per_1k=0.5)
    print("\nthe online detector reproduces the sweep's scores for every pick: yes")
    if shipped.settings != DEFAULT_SETTINGS:
        print("NOTE: services/common/anomaly_model.py's DetectorSettings defaults differ from this choice")


if __name__ == "__main__":
    main()
