"""The .proto files are the public contract: the importable code must match them, and they must lint."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("protos_generate", REPO / "protos" / "generate.py")
assert _spec is not None and _spec.loader is not None
protos_generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protos_generate)
generate, proto_files = protos_generate.generate, protos_generate.proto_files


def installed_package_dir() -> Path:
    module = importlib.import_module("civic.listening.v1.post_pb2")
    return Path(module.__file__).parent  # type: ignore[arg-type]


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh_dir = tmp_path / "civic" / "listening" / "v1"
    fresh = {p.name: p.read_bytes() for p in fresh_dir.iterdir() if p.is_file()}
    installed_dir = installed_package_dir()
    installed = {p.name: p.read_bytes() for p in installed_dir.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(installed), "run `make proto`: generated files differ in name"
    stale = [name for name in fresh if fresh[name] != installed[name]]
    assert not stale, f"generated code is stale, run `make proto`: {stale}"


def test_every_proto_is_generated() -> None:
    names = {p.stem for p in proto_files()}
    assert {"post", "ingestion", "inference", "search", "alerting"} <= names
    for name in names:
        importlib.import_module(f"civic.listening.v1.{name}_pb2_grpc")


def test_buf_lint_passes() -> None:
    buf = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        pytest.fail("buf is not installed: `make test` installs it into .tools/")
    result = subprocess.run([str(buf), "lint"], cwd=REPO / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_catches_an_uncommented_field(tmp_path: Path) -> None:
    """Guards the lint configuration itself: a missing comment must be an error."""
    buf = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        pytest.fail("buf is not installed: `make test` installs it into .tools/")
    (tmp_path / "buf.yaml").write_text((REPO / "protos" / "buf.yaml").read_text())
    target = tmp_path / "civic" / "listening" / "v1"
    target.mkdir(parents=True)
    (target / "x.proto").write_text(
        'syntax = "proto3";\n\n// Package comment.\npackage civic.listening.v1;\n\n'
        "// A message.\nmessage Thing {\n  string name = 1;\n}\n"
    )
    result = subprocess.run([str(buf), "lint"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "name" in result.stdout + result.stderr
