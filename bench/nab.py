"""NAB benchmark of the volume anomaly detector on the 53 labelled NAB development series.

The scorer follows NAB's published method (v1.1 sweeper): rows in the probationary period are ignored,
each labelled window is worth its first detection weighted by a scaled sigmoid of its relative position,
false positives are weighted by their distance past the preceding window, and the summed raw score is
normalised so the null detector scores 0 and the perfect detector 100.

The report prints, per NAB category and over the 53 series, the shipped detector's score (anomalies in
either direction, as NAB labels them), the published scores of NAB's leaderboard detectors on the same
files (bench/nab_published.py), a trailing-median baseline, and the tweet-volume series on their own.
The settings themselves are chosen by bench/nab_sweep.py.

Run: .venv/bin/python -m bench.nab [--tweets DIR] [--more DIR]
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
from pathlib import Path
from statistics import median

import numpy as np

from services.common.anomaly import DEFAULT_SENSITIVITY, DEFAULT_SETTINGS, Direction, VolumeAnomalyDetector

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "anomaly"
TWEETS_DIR = DATASETS / "nab"
MORE_DIR = DATASETS / "nab-more"
TWEETS = "realTweets"
CATEGORIES = (
    "artificialNoAnomaly", "artificialWithAnomaly", "realAWSCloudwatch", "realAdExchange", "realKnownCause",
    "realTraffic", TWEETS,
)
PROBATION_PERCENT = 0.15
MAD_TO_SIGMA = 1.4826  # makes the MAD a consistent estimate of a normal standard deviation


@dataclass(frozen=True)
class Profile:
    tp_weight: float
    fp_weight: float
    fn_weight: float


STANDARD_PROFILE = Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)


@dataclass(frozen=True)
class Series:
    key: str  # "<category>/<file>.csv", as NAB names it
    timestamps: list[str]
    seconds: np.ndarray  # the timestamps as seconds since the epoch (naive ones read as UTC)
    values: np.ndarray
    windows: list[tuple[int, int]]  # inclusive row-index ranges

    @property
    def category(self) -> str:
        return self.key.split("/")[0]

    @property
    def name(self) -> str:
        return Path(self.key).stem.removeprefix("Twitter_volume_")


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


def days_outside(series: Series) -> float:
    """Days of scored time outside the windows: each scored row outside a window adds the time since the
    row before it, so a series with gaps counts the calendar time its users would have waited through."""
    probation = probation_length(len(series.values))
    outside = np.ones(len(series.values), dtype=bool)
    for start, end in series.windows:
        outside[start : end + 1] = False
    steps = np.diff(series.seconds, prepend=series.seconds[0])
    return float(steps[probation:][outside[probation:]].sum()) / 86_400.0


def normalised_score(results: Sequence[FileResult]) -> float:
    """NAB's final score: 100 * (raw - null) / (perfect - null), each summed over the files."""
    raw = sum(r.raw_score for r in results)
    null = sum(r.null_score for r in results)
    perfect = sum(r.perfect_score for r in results)
    return 100.0 * (raw - null) / (perfect - null)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load_series(data_dir: Path) -> list[Series]:
    """Every series named in `data_dir`/windows.json, found under its category folder or directly in `data_dir`."""
    labels = json.loads((data_dir / "windows.json").read_text())
    series = []
    for key in sorted(labels):
        path = data_dir / key if (data_dir / key).exists() else data_dir / Path(key).name
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        timestamps = [row["timestamp"] for row in rows]
        seconds = np.array([_moment(t).timestamp() for t in timestamps])
        windows = []
        for start, end in labels[key]:
            first = int(np.searchsorted(seconds, _moment(start).timestamp(), side="left"))
            last = int(np.searchsorted(seconds, _moment(end).timestamp(), side="right")) - 1
            windows.append((first, last))
        values = np.array([float(row["value"]) for row in rows])
        series.append(Series(key, timestamps, seconds, values, windows))
    return series


def load_corpus(tweets_dir: Path = TWEETS_DIR, more_dir: Path = MORE_DIR) -> list[Series]:
    """The 53 development series: the five tweet-volume ones and NAB's other 48 labelled ones."""
    return sorted([*load_series(tweets_dir), *load_series(more_dir)], key=lambda s: s.key)


def detector_alerts(series: Series, direction: Direction = "both", **kwargs: object) -> np.ndarray:
    """The shipped detector (or one built with `kwargs`) run online over the series."""
    detector = VolumeAnomalyDetector(direction=direction, **kwargs)  # type: ignore[arg-type]
    return np.array(
        [detector.update(v, t).alert for v, t in zip(series.values.tolist(), series.seconds.tolist(), strict=True)]
    )


def baseline_alerts(series: Series, direction: Direction = "both") -> np.ndarray:
    """The reference baseline: robust z of log volume vs the trailing day's median/MAD beyond 4, one-day cooldown."""
    day = 24 * 3600
    history: deque[tuple[float, float]] = deque()
    alerts = np.zeros(len(series.values), dtype=bool)
    last_alert = -math.inf
    signs = {"rise": (1.0,), "fall": (-1.0,), "both": (1.0, -1.0)}[direction]
    for i, (moment, value) in enumerate(zip(series.seconds.tolist(), series.values.tolist(), strict=True)):
        y = math.copysign(math.log1p(abs(value)), value)
        while history and history[0][0] <= moment - day:
            history.popleft()
        if history and moment - series.seconds[0] >= day and moment - last_alert >= day:
            past = [h for _, h in history]
            centre = median(past)
            spread = MAD_TO_SIGMA * median(abs(h - centre) for h in past) or 1e-9
            if any(sign * (y - centre) / spread > 4 for sign in signs):
                alerts[i] = True
                last_alert = moment
        history.append((moment, y))
    return alerts


def evaluate(series: Sequence[Series], alerts_of: Callable[[Series], np.ndarray]) -> list[FileResult]:
    return [score_file(len(s.values), s.windows, alerts_of(s)) for s in series]


@dataclass(frozen=True)
class Summary:
    nab: float  # NAN where no window is scored (artificialNoAnomaly): NAB's normalisation is undefined there
    raw: float
    found: int
    windows: int
    false_alerts: int
    false_per_1k: float

    @property
    def recall(self) -> float:
        return self.found / self.windows if self.windows else math.nan


def summary(results: Sequence[FileResult]) -> Summary:
    """NAB standard score, windowed recall and false alerts per 1,000 scored points outside windows."""
    windows = sum(r.windows for r in results)
    outside = sum(r.scored_points_outside for r in results)
    false_alerts = sum(r.false_alerts for r in results)
    return Summary(
        nab=normalised_score(results) if windows else math.nan,
        raw=sum(r.raw_score for r in results),
        found=sum(r.windows_detected for r in results),
        windows=windows,
        false_alerts=false_alerts,
        false_per_1k=1000.0 * false_alerts / outside,
    )


def groups(series: Sequence[Series]) -> list[tuple[str, list[int]]]:
    """Row groups of the report: each category, the 48 non-tweet series, and all 53."""
    by_category = [(c, [i for i, s in enumerate(series) if s.category == c]) for c in CATEGORIES]
    others = [i for i, s in enumerate(series) if s.category != TWEETS]
    everything = ("all 53", list(range(len(series))))
    return [*[(c, ix) for c, ix in by_category if ix], ("48 non-tweet series", others), everything]


def category_table(
    title: str, series: Sequence[Series], results: Sequence[FileResult], found_bound: bool = False
) -> None:
    """One row per category and the totals: NAB, windowed recall, false alerts (count, per 1,000 rows and
    per day outside windows)."""
    print(f"\n{title}")
    header = f"{'category':<24}{'files':>6}{'NAB':>7}{'recall':>9}{'found':>8}{'false':>7}{'FA/1k':>7}{'FA/day':>8}"
    print(header)
    print("-" * len(header))
    mark = "<=" if found_bound else ""
    for name, indices in groups(series):
        s = summary([results[i] for i in indices])
        nab = f"{s.nab:7.1f}" if s.windows else f"{'raw ' + format(s.raw, '.2f'):>7}"
        recall = f"{mark}{s.recall:.3f}" if s.windows else "-"
        per_day = s.false_alerts / sum(days_outside(series[i]) for i in indices)
        print(f"{name:<24}{len(indices):>6}{nab}{recall:>9}{f'{s.found}/{s.windows}':>8}"
              f"{s.false_alerts:>7}{s.false_per_1k:>7.2f}{per_day:>8.3f}")


def series_table(title: str, series: Sequence[Series], results: Sequence[FileResult]) -> None:
    print(f"\n{title}")
    columns = f"{'series':<8}{'NAB':>7}{'recall':>8}{'found':>7}{'false':>7}{'FA/1k':>7}"
    header = f"{columns}  first alert (share of window elapsed)"
    print(header)
    print("-" * len(header))
    for s, r in zip(series, results, strict=True):
        line = summary([r])
        shown = " ".join(f"{p:.2f}" for p in r.first_alert_positions)
        print(f"{s.name:<8}{line.nab:>7.1f}{line.recall:>8.2f}{f'{line.found}/{line.windows}':>7}"
              f"{line.false_alerts:>7}{line.false_per_1k:>7.2f}  {shown}")
    total = summary(results)
    print(f"{'overall':<8}{total.nab:>7.1f}{total.recall:>8.2f}{f'{total.found}/{total.windows}':>7}"
          f"{total.false_alerts:>7}{total.false_per_1k:>7.2f}")


def leaderboard_table(series: Sequence[Series], ours: Sequence[FileResult], board: dict[str, list[FileResult]]) -> None:
    """NAB score per category of each published detector on these files, beside the shipped detector."""
    names = [name for name, _ in groups(series) if name != "artificialNoAnomaly"]
    short = [n.removeprefix("real").removeprefix("artificial")[:10] for n in names]
    print("\nNAB standard score on the same files: the published per-file results of NAB's detectors")
    header = f"{'detector':<20}" + "".join(f"{n:>11}" for n in short) + f"{'recall':>10}{'FA/1k':>7}"
    print(header)
    print("-" * len(header))
    rows = [("this detector", list(ours)), *board.items()]
    for detector, results in sorted(rows, key=lambda row: -summary(row[1]).nab):
        cells = "".join(f"{summary([results[i] for i in ix]).nab:>11.1f}" for n, ix in groups(series) if n in names)
        total = summary(results)
        recall = f"{'' if detector == 'this detector' else '<='}{total.recall:.3f}"
        print(f"{detector:<20}{cells}{recall:>10}{total.false_per_1k:>7.2f}")


def rows_of(series: Iterable[Series], category: str) -> list[Series]:
    return [s for s in series if s.category == category]


def corpus_parser(description: str | None) -> argparse.ArgumentParser:
    """A NAB benchmark's command line: where the two folders of series are (the shared datasets by default)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tweets", type=Path, default=TWEETS_DIR)
    parser.add_argument("--more", type=Path, default=MORE_DIR)
    return parser


def main() -> None:
    from bench.nab_published import published_results

    args = corpus_parser(__doc__).parse_args()
    series = load_corpus(args.tweets, args.more)
    print(
        f"NAB standard profile (tp {STANDARD_PROFILE.tp_weight}, fp {STANDARD_PROFILE.fp_weight}, "
        f"fn {STANDARD_PROFILE.fn_weight}); probation {PROBATION_PERCENT:.0%} of rows, at most 750; "
        f"{len(series)} series"
    )
    print(f"shipped settings: {DEFAULT_SETTINGS}; default sensitivity {DEFAULT_SENSITIVITY}")
    ours = evaluate(series, detector_alerts)
    category_table("this detector, anomalies in either direction (NAB's task)", series, ours)
    category_table(
        "baseline: robust z of log volume vs trailing-day median/MAD beyond 4 either way, one-day cooldown",
        series, evaluate(series, baseline_alerts),
    )
    board = published_results(series)
    leaderboard_table(series, ours, board)
    print("(their windowed recall is an upper bound: NAB's per-file counts are of alert rows, not windows)")
    tweets = rows_of(series, TWEETS)
    series_table("tweet volume, either direction", tweets, evaluate(tweets, detector_alerts))
    series_table(
        "tweet volume, rises only (what a volume_spike rule reports)", tweets,
        evaluate(tweets, lambda s: detector_alerts(s, "rise")),
    )


if __name__ == "__main__":
    main()
