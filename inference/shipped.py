"""Where the trained weights that ship with the inference image live (inference/artifacts/)."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
