"""What each part of the volume anomaly detector is worth: every part removed in turn from the shipped
settings, scored on the 53 NAB development series (in-sample, anomalies in either direction).

Each variant is the online detector itself with one setting changed, so a part that only pays on the
series it was chosen on shows up here as a small loss; the cross-validated figures are in
bench/nab_sweep.py's output.

Run: .venv/bin/python -m bench.nab_ablation [--tweets DIR] [--more DIR]   (about 3 minutes)
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

from bench.nab import corpus_parser, detector_alerts, evaluate, load_corpus, summary
from services.common.anomaly import DEFAULT_SETTINGS

VARIANTS = {
    "shipped": DEFAULT_SETTINGS,
    "one scale (5 minutes) only": replace(DEFAULT_SETTINGS, scales_s=DEFAULT_SETTINGS.scales_s[:1]),
    "two scales (5 minutes, 1 hour)": replace(DEFAULT_SETTINGS, scales_s=DEFAULT_SETTINGS.scales_s[:2]),
    "no weekly profile": replace(DEFAULT_SETTINGS, weekly_after_weeks=math.inf),
    "no level-shift acceptance": replace(DEFAULT_SETTINGS, shift_z=math.inf),
    "no calibration against ordinary peaks": replace(DEFAULT_SETTINGS, peak_ratio=0.0),
    "no burst confirmation (every 5-minute row counts)": replace(DEFAULT_SETTINGS, burst_confirm_share=0.0),
    "re-arm at once after the cooldown (no hysteresis)": replace(DEFAULT_SETTINGS, rearm_share=1.0),
    "no relative spread floor": replace(DEFAULT_SETTINGS, spread_floor=0.0),
    "no trimmed record column": replace(DEFAULT_SETTINGS, trimmed_record_margin=math.inf),
    "no record column (full range)": replace(DEFAULT_SETTINGS, record_margin=math.inf),
    "no record columns at all": replace(DEFAULT_SETTINGS, record_margin=math.inf, trimmed_record_margin=math.inf),
}


def main() -> None:
    args = corpus_parser(__doc__).parse_args()
    series = load_corpus(args.tweets, args.more)
    header = f"{'variant':<52}{'NAB':>7}{'recall':>8}{'found':>8}{'false':>7}{'FA/1k':>7}"
    print(header)
    print("-" * len(header))
    for label, settings in VARIANTS.items():
        total = summary(evaluate(series, partial(detector_alerts, direction="both", settings=settings)))
        print(f"{label:<52}{total.nab:>7.1f}{total.recall:>8.3f}{f'{total.found}/{total.windows}':>8}"
              f"{total.false_alerts:>7}{total.false_per_1k:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
