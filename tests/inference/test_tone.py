"""Tone on the command line: `civic classify` prints emotion and offensive language beside sentiment,
the same in-process (`--local`) and through the real InferenceService."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CIVIC = str(Path(sys.executable).with_name("civic"))
EMOTIONS = {"anger", "joy", "optimism", "sadness"}
TEXTS = [
    "You useless idiots, I am sick and tired of your lies. Shut up and fix the damn roads!",
    "",
    "What a wonderful day at the new park with the kids, we loved every minute! 😊",
]


def classify(*args: str, env: dict[str, str] | None = None) -> list[dict[str, object]]:
    result = subprocess.run(
        [CIVIC, "classify", *args], input="\n".join(TEXTS) + "\n", capture_output=True, text=True,
        timeout=600, cwd=REPO, env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_tone_lines(rows: list[dict[str, object]]) -> None:
    assert len(rows) == len(TEXTS)
    abusive, blank, joyful = rows
    for row in (abusive, joyful):
        scores = row["emotion_scores"]
        assert isinstance(scores, dict) and set(scores) == EMOTIONS
        assert abs(sum(scores.values()) - 1.0) < 1e-3
        assert row["emotion"] == max(scores, key=scores.__getitem__)
        assert isinstance(row["offensive_score"], float)
        assert row["offensive"] == (row["offensive_score"] >= 0.5)
        assert {"label", "scores", "language"} <= set(row)
    assert (abusive["emotion"], abusive["offensive"], abusive["label"]) == ("anger", True, "negative")
    assert (joyful["emotion"], joyful["offensive"], joyful["label"]) == ("joy", False, "positive")
    # An empty line has no tone: no emotion, zero scores, not offensive.
    assert (blank["emotion"], blank["offensive"], blank["offensive_score"]) == ("", False, 0.0)


@pytest.mark.slow
def test_classify_local_prints_tone() -> None:
    assert_tone_lines(classify("--local"))


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_classify_through_the_service_prints_the_same_tone(inference_target: str) -> None:
    remote = classify(env={"CIVIC_INFERENCE_TARGET": inference_target})
    assert_tone_lines(remote)
    local = classify("--local")
    for remote_row, local_row in zip(remote, local, strict=True):
        assert remote_row["emotion"] == local_row["emotion"]
        assert abs(float(remote_row["offensive_score"]) - float(local_row["offensive_score"])) < 0.02  # type: ignore[arg-type]
