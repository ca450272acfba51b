"""The NAB scorer in bench/nab.py on hand-built cases whose scores follow directly from NAB's method."""

import math

import numpy as np
import pytest

from bench.nab import (
    STANDARD_PROFILE,
    Series,
    days_outside,
    normalised_score,
    probation_length,
    scaled_sigmoid,
    score_file,
)

ROWS = 2000  # probation is 15% of this: rows 0..299 are ignored
WINDOWS = [(500, 599), (1200, 1299)]


def alerts_at(*rows: int) -> np.ndarray:
    alerts = np.zeros(ROWS, dtype=bool)
    alerts[list(rows)] = True
    return alerts


def normalised(alerts: np.ndarray) -> float:
    return normalised_score([score_file(ROWS, WINDOWS, alerts)])


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probation_length(ROWS) == 300
    assert probation_length(15_902) == 750


def test_scaled_sigmoid_anchor_points() -> None:
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(1.0) == pytest.approx(-scaled_sigmoid(-1.0))
    assert scaled_sigmoid(3.0) == -1.0


def test_perfect_detector_scores_100_and_null_scores_0() -> None:
    assert normalised(alerts_at(500, 1200)) == pytest.approx(100.0)
    assert normalised(alerts_at()) == pytest.approx(0.0)


def test_only_the_first_detection_in_a_window_counts() -> None:
    assert normalised(alerts_at(500, 501, 550, 1200, 1250)) == pytest.approx(100.0)


def test_late_detection_earns_the_sigmoid_of_its_relative_position() -> None:
    result = score_file(ROWS, WINDOWS, alerts_at(550))
    middle = scaled_sigmoid(-(599 - 550 + 1) / 100) / scaled_sigmoid(-1.0)
    assert result.raw_score == pytest.approx(middle - STANDARD_PROFILE.fn_weight)
    assert result.windows_detected == 1
    assert result.first_alert_positions == [pytest.approx(0.5)]


def test_false_positive_before_any_window_costs_the_full_fp_weight() -> None:
    result = score_file(ROWS, WINDOWS, alerts_at(400, 500, 1200))
    assert result.raw_score == pytest.approx(2 * STANDARD_PROFILE.tp_weight - STANDARD_PROFILE.fp_weight)
    assert result.false_alerts == 1
    assert normalised(alerts_at(400, 500, 1200)) == pytest.approx(100 * (4 - 0.11) / 4)


def test_false_positive_cost_grows_with_distance_past_the_preceding_window() -> None:
    just_after = score_file(ROWS, WINDOWS, alerts_at(500, 600, 1200)).raw_score - 2.0
    one_width_after = score_file(ROWS, WINDOWS, alerts_at(500, 698, 1200)).raw_score - 2.0
    far_after = score_file(ROWS, WINDOWS, alerts_at(500, 1200, 1600)).raw_score - 2.0
    assert just_after == pytest.approx(scaled_sigmoid(1 / 99) * 0.11)
    assert one_width_after == pytest.approx(scaled_sigmoid(1.0) * 0.11)
    assert far_after == pytest.approx(-0.11)
    assert just_after > one_width_after > far_after


def test_alerts_in_the_probationary_period_are_ignored() -> None:
    result = score_file(ROWS, WINDOWS, alerts_at(10, 299))
    assert result.false_alerts == 0
    assert normalised(alerts_at(10, 299)) == pytest.approx(0.0)


def test_windows_inside_the_probationary_period_are_not_scored() -> None:
    result = score_file(ROWS, [(100, 199), *WINDOWS], alerts_at(500, 1200))
    assert result.windows == 2
    assert result.null_score == -2.0


def test_days_outside_count_the_time_after_probation_between_windows_gaps_included() -> None:
    seconds = np.arange(ROWS) * 300.0
    seconds[1500:] += 86_400.0  # a day without data before row 1500
    series = Series("realTweets/x.csv", [""] * ROWS, seconds, np.zeros(ROWS), WINDOWS)
    rows_outside = ROWS - 300 - 200
    assert days_outside(series) == pytest.approx((rows_outside * 300.0 + 86_400.0) / 86_400.0)
