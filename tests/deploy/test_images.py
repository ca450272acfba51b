"""The container images cannot be built here (no Docker engine), so these tests hold the Dockerfiles
to the package they are built from: the paths they copy, the pins they install, the modules they run,
the user they run as, and the wheel the same steps produce from this checkout."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.helm import CHART_DIR, REPO_ROOT

DOCKER_DIR = REPO_ROOT / "deploy" / "docker"
DOCKERFILES = {"services": DOCKER_DIR / "services.Dockerfile", "ray": DOCKER_DIR / "ray.Dockerfile"}
SERVICE_MODULES = ("services.ingestion", "services.search", "services.alerting", "services.gateway")
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuations joined and comments dropped, numbered by build stage."""
    text = re.sub(r"\\\n", "", path.read_text())
    instructions, stage = [], -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return instructions


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    pairs = (i.arguments.split("=", 1) for i in instructions if i.keyword == "ARG" and "=" in i.arguments)
    return {name: value for name, value in pairs}


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), text)


def pinned(requirement_name: str) -> str:
    pattern = re.compile(rf"^{re.escape(requirement_name)}(\[[^\]]*\])?==(?P<version>[^;\s]+)$")
    extras = PYPROJECT["project"]["optional-dependencies"].values()
    for requirement in [*PYPROJECT["project"]["dependencies"], *(r for extra in extras for r in extra)]:
        match = pattern.match(requirement)
        if match:
            return match.group("version")
    raise AssertionError(f"{requirement_name} is not pinned with == in pyproject.toml")


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return values


@pytest.fixture(scope="module")
def dockerfiles() -> dict[str, list[Instruction]]:
    return {name: parse_dockerfile(path) for name, path in DOCKERFILES.items()}


@pytest.mark.parametrize("image", DOCKERFILES)
def test_multi_stage_and_non_root(dockerfiles: dict[str, list[Instruction]], image: str) -> None:
    instructions = dockerfiles[image]
    assert sum(i.keyword == "FROM" for i in instructions) >= 2, "build tools must stay in a build stage"
    final_stage = instructions[-1].stage
    users = [i.arguments for i in instructions if i.keyword == "USER" and i.stage == final_stage]
    assert users, "the final stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"final USER {users[-1]} must be a numeric non-root uid"
    # The chart's pod securityContext runs as the image's user.
    pod_user = chart_values()["podSecurityContext" if image == "services" else "inference"]
    expected = pod_user["runAsUser"] if image == "services" else pod_user["podSecurityContext"]["runAsUser"]
    assert int(uid) == expected


@pytest.mark.parametrize("image", DOCKERFILES)
def test_copied_paths_exist_and_pass_the_dockerignore(
    dockerfiles: dict[str, list[Instruction]], image: str
) -> None:
    ignore = (DOCKERFILES[image].parent / f"{DOCKERFILES[image].name}.dockerignore").read_text().split()
    for instruction in dockerfiles[image]:
        if instruction.keyword != "COPY" or "--from=" in instruction.arguments:
            continue
        sources = [word for word in shlex.split(instruction.arguments) if not word.startswith("--")][:-1]
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"{image}: COPY {source}: no such path in the repository"
            top = source.split("/")[0]
            assert f"!{top}" in ignore or f"!{top}/" in ignore, f"{image}: {source} is excluded by the dockerignore"


@pytest.mark.parametrize("image", DOCKERFILES)
def test_installs_the_package_pins_after_generating_the_protos(
    dockerfiles: dict[str, list[Instruction]], image: str
) -> None:
    instructions = dockerfiles[image]
    args = build_args(instructions)
    assert args["GRPCIO_TOOLS_VERSION"] == pinned("grpcio-tools")
    runs = [expand(i.arguments, args) for i in instructions if i.keyword == "RUN"]
    generate_step = next(index for index, run in enumerate(runs) if "python protos/generate.py" in run)
    package = re.compile(r'pip (install|wheel)[^&]* "?\.(\[[a-z,]+\])?"?(\s|$)')
    install_step = next(index for index, run in enumerate(runs) if package.search(run))
    assert generate_step <= install_step, "the generated gRPC code must exist before the package is built"
    if image == "services":
        # Each image installs only its own extras: the services and the gateway never run a model.
        assert '".[services,gateway]"' in runs[install_step]
        assert not [run for run in runs if "torch" in run], "the services image installs no torch"
    else:
        assert args["TORCH_VERSION"] == pinned("torch")
        torch_step = next(index for index, run in enumerate(runs) if f'"torch=={pinned("torch")}"' in run)
        wheel_install = next(index for index, run in enumerate(runs) if "civic_listening-*.whl" in run)
        assert "[inference]" in runs[wheel_install]
        assert torch_step < wheel_install, "torch is installed first, so nothing resolves a second build"


def test_service_image_runs_the_modules_the_chart_runs(dockerfiles: dict[str, list[Instruction]]) -> None:
    (cmd,) = [i.arguments for i in dockerfiles["services"] if i.keyword == "CMD"]
    assert cmd == '["python", "-m", "services.ingestion"]'
    for module in SERVICE_MODULES:
        assert (REPO_ROOT / Path(*module.split(".")) / "__main__.py").exists(), f"python -m {module} has no __main__"
    base = build_args(dockerfiles["services"])["PYTHON_IMAGE"]
    assert base.startswith("python:3.11"), "the package requires Python 3.11"


def test_ray_image_matches_the_package_and_the_chart(dockerfiles: dict[str, list[Instruction]]) -> None:
    instructions = dockerfiles["ray"]
    ray_version = pinned("ray")
    assert build_args(instructions)["RAY_IMAGE"] == f"rayproject/ray:{ray_version}-py311-cpu"
    assert chart_values()["inference"]["rayVersion"] == ray_version
    env = " ".join(i.arguments for i in instructions if i.keyword == "ENV")
    assert f"CIVIC_MODEL_CACHE_DIR={chart_values()['inference']['modelCacheDir']}" in env


def test_ray_image_builds_the_model_with_names_that_exist(dockerfiles: dict[str, list[Instruction]]) -> None:
    (bake,) = [i.arguments for i in dockerfiles["ray"] if i.keyword == "RUN" and "inference.model" in i.arguments]
    code = shlex.split(bake)[2]  # python -c "<code>"
    tree = ast.parse(code)
    imported = [(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names]
    assert imported
    for module, name in imported:
        assert module is not None
        source = REPO_ROOT / Path(*module.split(".")).with_suffix(".py")
        defined = {node.name: node for node in ast.parse(source.read_text()).body
                   if isinstance(node, ast.FunctionDef | ast.ClassDef)}
        assert name in defined, f"{module} defines no {name}"
    # The model is built through the same constructor the replicas use.
    (model_class,) = [node for module, name in imported if name == "EnrichmentModel"
                      for node in ast.parse((REPO_ROOT / "inference" / "model.py").read_text()).body
                      if isinstance(node, ast.ClassDef) and node.name == name]
    assert "EnrichmentModel.from_settings(Settings())" in code
    assert any(isinstance(item, ast.FunctionDef) and item.name == "from_settings" for item in model_class.body)


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel the image build steps produce from a clean copy of this checkout."""
    source = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "gen", "*.egg-info")
    for name in ("protos", "services", "inference"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=ignore)
    subprocess.run([sys.executable, "protos/generate.py"], cwd=source, check=True, capture_output=True)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."],
        cwd=source, check=True, capture_output=True,
    )
    (wheel,) = out.glob("civic_listening-*.whl")
    return zipfile.ZipFile(wheel)


def test_wheel_holds_every_module_the_images_and_chart_run(built_wheel: zipfile.ZipFile) -> None:
    names = set(built_wheel.namelist())
    serve = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["inference"]["application"]["importPath"]
    modules = [f"{module}.__main__" for module in SERVICE_MODULES]
    modules += [serve.split(":")[0], "inference.encoder", "civic.listening.v1.inference_pb2_grpc"]
    for module in modules:
        assert f"{module.replace('.', '/')}.py" in names, f"{module} is missing from the wheel"
    static = REPO_ROOT / "services" / "gateway" / "static"
    pages = [str(path.relative_to(REPO_ROOT)) for path in static.rglob("*") if path.is_file()]
    assert "services/gateway/static/index.html" in pages
    assert not [page for page in pages if page not in names], "the dashboard's files are missing from the wheel"


def test_wheel_holds_the_data_files_the_inference_package_reads(built_wheel: zipfile.ZipFile) -> None:
    names = set(built_wheel.namelist())
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "inference", "services/common/relevance"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()
    data_files = [path for path in listed if Path(path).suffix not in (".py", ".md") and (REPO_ROOT / path).exists()
                  and not path.startswith("inference/training/")]
    missing = [path for path in data_files if path not in names]
    assert not missing, f"data files the image would lack (pyproject package-data): {missing}"
    assert not [name for name in names if name.startswith("inference/training/")], "training ships in no image"
