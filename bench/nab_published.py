"""The NAB leaderboard detectors' published per-file results, scored on the 53 development series.

bench/nab_published.csv holds, unchanged, the rows of NAB's `results/<detector>/<detector>_standard_scores.csv`
(github.com/numenta/NAB, MIT licence; the commit of each file is listed in bench/README.md) for the 53
development files only: detector, profile, file, the detector's threshold, its raw NAB score on the file
and the point counts TP, TN, FP, FN after the probationary period. NAB's final score is a normalisation of
summed raw scores, so a detector's score on any subset of files follows from these rows and the windows.

Windowed recall cannot be recovered exactly: TP counts alert rows inside windows, not windows. A file
detects at most min(TP, windows) of its windows, which is the bound the report prints.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.nab import FileResult, Series, score_file

PUBLISHED = Path(__file__).with_name("nab_published.csv")


def published_results(series: Sequence[Series], path: Path = PUBLISHED) -> dict[str, list[FileResult]]:
    """Per detector, a FileResult per series (in `series` order), built from its published row."""
    rows: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Profile"] == "standard":
                rows[row["Detector"]][row["File"]] = row
    board = {}
    for detector, by_file in rows.items():
        missing = [s.key for s in series if s.key not in by_file]
        if missing:
            raise ValueError(f"{path}: {detector} has no row for {', '.join(missing)}")
        board[detector] = [_result(s, by_file[s.key]) for s in series]
    return board


def _result(series: Series, row: dict[str, str]) -> FileResult:
    empty = score_file(len(series.values), series.windows, np.zeros(len(series.values), dtype=bool))
    true_rows, false_rows, true_negatives = int(row["TP"]), int(row["FP"]), int(row["TN"])
    return FileResult(
        raw_score=float(row["Score"]),
        null_score=empty.null_score,
        perfect_score=empty.perfect_score,
        windows=empty.windows,
        windows_detected=min(true_rows, empty.windows),  # an upper bound: see the module docstring
        false_alerts=false_rows,
        scored_points_outside=true_negatives + false_rows,
        first_alert_positions=[],
    )
