"""Builders racing into the model cache: the first rename wins, a loser's failure is harmless, a real
failure is not, and no staging folder is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inference.model_cache import staging_for


def test_the_first_rename_wins_and_the_loser_keeps_quiet(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model"
    with staging_for(target) as first, staging_for(target) as second:
        (first / "weights").write_text("first")
        (second / "weights").write_text("second")
        os.rename(first, target)
        os.rename(second, target)  # target is a non-empty folder now: the loser's rename fails
    assert (target / "weights").read_text() == "first"
    assert [path.name for path in target.parent.iterdir()] == ["model"]


def test_a_failure_without_a_result_is_raised(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    with pytest.raises(FileNotFoundError), staging_for(target) as staging:
        os.rename(staging / "never-written.onnx", target)
    assert list(tmp_path.iterdir()) == []
