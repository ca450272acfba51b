"""Choose the anomaly detector's settings by leave-one-category-out cross-validation over NAB series.

Every combination of the grids below is scored on all 53 development series (anomalies in either
direction, NAB standard profile). For each of NAB's seven categories, the combination with the best
NAB score pooled over the *other* six categories is picked and scored on the held-out one; those
held-out figures are the estimate of how the choice generalises to series of an unseen kind. The
shipped default is the same rule applied to all 53 series. No setting is ever chosen on one series.

The residual model (the expensive part) runs once per structural combination, the record ranges once
per number of days and trimming rank; the calibration, record and gate settings are applied afterwards
to the per-scale z and the record shares, in that order, each stage's arrays reused by every
combination after it, with the detector's own calibration and alert gate. Every pick is finally re-run
through the online detector, which must reproduce the sweep's scores exactly. Two processes, one per
core: about 30 minutes.

Run: .venv/bin/python -m bench.nab_sweep
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing import Pool
from typing import Any

import numpy as np

from bench.nab import (
    CATEGORIES,
    FileResult,
    Series,
    category_table,
    corpus_parser,
    detector_alerts,
    load_corpus,
    score_file,
    summary,
)
from services.common.anomaly import (
    DEFAULT_SETTINGS,
    FULL_SCALE_Z,
    default_sensitivity,
    direction_columns,
)
from services.common.anomaly_model import DetectorSettings, PeakCalibration, RecordRange, ResidualModel

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
    # Not above either: at 0.25 the 6-hour z of a tripled count stays under shift_z, so the new level is
    # not accepted and a burst on it days later goes unreported (the level-shift test holds that).
    "count_spread_floor": (0.15,),
}
# Applied to the traces: the calibration of the scales, then the records, then the alert gate.
CALIBRATION_GRID: dict[str, tuple[float, ...]] = {
    "alert_z": (3.0, 3.5, 4.0),
    "peak_ratio": (1.5, 1.55, 1.6, 1.65, 1.7, 1.75, 1.8),
    "burst_confirm_share": (0.0, 0.3),
}
# A margin of inf turns that record column off, so the cross-validation may also choose none.
RECORD_GRID: dict[str, tuple[float, ...]] = {
    "record_days": (28, 56, 84, 112),
    "record_margin": (0.1, 0.15, math.inf),
    "trimmed_record_rank": (2, 3, 4),
    "trimmed_record_margin": (0.3, 0.5, 0.7, math.inf),
}
GATE_GRID: dict[str, tuple[float, ...]] = {
    "cooldown_s": (DAY / 2, DAY),
    "rearm_share": (0.3, 0.5),
}
EVERY_KEY = (*STRUCTURAL_GRID, *CALIBRATION_GRID, *RECORD_GRID, *GATE_GRID)


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


@dataclass(frozen=True)
class RecordShares:
    """Per series and row, how far the value lies beyond the last days' range and beyond its trimmed
    range, either way."""

    full: list[np.ndarray]
    trimmed: list[np.ndarray]


def record_shares(series: Sequence[Series], days: int, rank: int) -> RecordShares:
    full, trimmed = [], []
    for s in series:
        records = RecordRange(days, rank)
        moments = zip(s.values.tolist(), s.seconds.tolist(), strict=True)
        rows = [records.observe(value, moment) for value, moment in moments]
        full.append(np.array([max(row[0]) for row in rows]))
        trimmed.append(np.array([max(row[1]) for row in rows]))
    return RecordShares(full, trimmed)


def gate(seconds: np.ndarray, anomalous: np.ndarray, calm: np.ndarray, settings: DetectorSettings) -> np.ndarray:
    """The detector's alert gate over a whole series, jumping from one alert to the next: after an alert
    the next one is the first anomalous row that is past the cooldown and follows a calm row."""
    alerts = np.zeros(len(seconds), dtype=bool)
    candidates = np.flatnonzero(anomalous & (seconds - seconds[0] >= settings.warmup_s))
    calms = np.flatnonzero(calm)
    at = 0
    while at < len(candidates):
        alert = int(candidates[at])
        alerts[alert] = True
        rearm = int(np.searchsorted(calms, alert, side="right"))
        if rearm == len(calms):
            break
        cooled = int(np.searchsorted(seconds, seconds[alert] + settings.cooldown_s))
        at = int(np.searchsorted(candidates, max(int(calms[rearm]), cooled)))
    return alerts


def residual_strongest(cols: np.ndarray, pks: np.ndarray, settings: DetectorSettings) -> np.ndarray:
    """Per row, the strongest calibrated scale, the shortest scale counting only after a row at
    `burst_confirm_share` of alert_z (as VolumeAnomalyDetector.update)."""
    evidence = cols / np.maximum(1.0, settings.peak_ratio * pks / settings.alert_z)
    least = settings.burst_confirm_share * settings.alert_z
    for column in (0, cols.shape[1] // 2):
        before = np.concatenate(([0.0], evidence[:-1, column]))
        evidence[:, column] = np.where(before < least, 0.0, evidence[:, column])
    return evidence.max(axis=1)


def with_records(
    residual: np.ndarray, full: np.ndarray, trimmed: np.ndarray, settings: DetectorSettings
) -> np.ndarray:
    """The detector's score per row: the residual's strongest scale or either record column."""
    strongest = np.maximum(residual, settings.alert_z * full / settings.record_margin)
    strongest = np.maximum(strongest, settings.alert_z * trimmed / settings.trimmed_record_margin)
    return np.minimum(strongest / FULL_SCALE_Z, 1.0)


def gated_alerts(series: Series, score: np.ndarray, settings: DetectorSettings) -> np.ndarray:
    threshold = 1.0 - default_sensitivity(settings)
    return gate(series.seconds, score >= threshold, score < settings.rearm_share * threshold, settings)


def alerts_from_traces(
    series: Sequence[Series], found: Traces, records: RecordShares, settings: DetectorSettings
) -> list[np.ndarray]:
    """What VolumeAnomalyDetector(direction="both", settings=settings) alerts on, from the traces and the
    record shares of `settings.record_days` and `settings.trimmed_record_rank`."""
    return [
        gated_alerts(s, with_records(residual_strongest(cols, pks, settings), full, trimmed, settings), settings)
        for s, cols, pks, full, trimmed in zip(
            series, found.columns, found.peaks, records.full, records.trimmed, strict=True
        )
    ]


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
_RECORDS: dict[tuple[int, int], RecordShares] = {}


def _share(series: list[Series], records: dict[tuple[int, int], RecordShares]) -> None:
    global _SERIES, _RECORDS
    _SERIES, _RECORDS = series, records


def score_structural(values: Sequence[float]) -> list[Scores]:
    """Every calibration, record and gate combination on one structural combination (a worker's unit of
    work); each stage's arrays are computed once and reused by every combination after it."""
    structural = with_values(DEFAULT_SETTINGS, STRUCTURAL_GRID, values)
    found = traces(_SERIES, structural)
    scored = []
    for calibration_values in itertools.product(*CALIBRATION_GRID.values()):
        calibrating = with_values(structural, CALIBRATION_GRID, calibration_values)
        residuals = [residual_strongest(c, p, calibrating) for c, p in zip(found.columns, found.peaks, strict=True)]
        for record_values in itertools.product(*RECORD_GRID.values()):
            recording = with_values(calibrating, RECORD_GRID, record_values)
            records = _RECORDS[int(recording.record_days), int(recording.trimmed_record_rank)]
            scores = [
                with_records(residual, full, trimmed, recording)
                for residual, full, trimmed in zip(residuals, records.full, records.trimmed, strict=True)
            ]
            for gate_values in itertools.product(*GATE_GRID.values()):
                settings = with_values(recording, GATE_GRID, gate_values)
                results = [
                    score_file(len(s.values), s.windows, gated_alerts(s, score, settings))
                    for s, score in zip(_SERIES, scores, strict=True)
                ]
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
    parser = corpus_parser(__doc__)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    series = load_corpus(args.tweets, args.more)
    started = time.monotonic()
    records = {
        (int(days), int(rank)): record_shares(series, int(days), int(rank))
        for days in RECORD_GRID["record_days"]
        for rank in RECORD_GRID["trimmed_record_rank"]
    }
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
