"""The Dockerfiles and .dockerignore, checked without Docker: hadolint, copied paths, users, torch-free runtime."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.compose_model import COMPOSE_FILE, SCALE_FILE, load, merge
from tests.deploy.dockerfile_model import (
    copy_sources,
    excluded_by_dockerignore,
    parse_dockerfile,
    pip_installs,
    stage_closure,
)
from tests.deploy.tools import ROOT, app_routes, venv_tool

BUILDS = {
    name: service["build"]
    for name, service in merge(load(COMPOSE_FILE), load(SCALE_FILE))["services"].items()
    if "build" in service
}
GPU_DOCKERFILE = ROOT / "docker" / "inference-gpu.Dockerfile"  # not in compose: it needs a GPU host
DOCKERFILES = sorted(
    {(ROOT / build["context"] / build["dockerfile"]).resolve() for build in BUILDS.values()} | {GPU_DOCKERFILE}
)
CUDA_BASE = re.compile(r"nvidia/cuda:(\d+)\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+")


@pytest.mark.parametrize("service", sorted(BUILDS))
def test_every_build_has_an_existing_context_dockerfile_and_target(service: str) -> None:
    build = BUILDS[service]
    context = ROOT / build["context"]
    assert context.is_dir()
    assert (context / build["dockerfile"]).is_file()
    if "target" in build:
        assert build["target"] in {stage.name for stage in parse_dockerfile(context / build["dockerfile"])}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_reports_no_errors(dockerfile: Path) -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", "--failure-threshold", "error", dockerfile],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_path_a_dockerfile_copies_exists_in_the_build_context_and_is_not_dockerignored(dockerfile: Path) -> None:
    checked = 0
    for stage in parse_dockerfile(dockerfile):
        for keyword in ("COPY", "ADD"):
            for arguments in stage.arguments_of(keyword):
                for source in copy_sources(arguments) or []:
                    path = ROOT / source
                    assert path.exists(), f"{dockerfile.name}: {keyword} {source} does not exist"
                    assert not excluded_by_dockerignore(path.resolve().relative_to(ROOT).as_posix()), source
                    for file in path.rglob("*") if path.is_dir() else [path]:
                        if file.suffix == ".py" or file.name in {"py.typed", "pyproject.toml"}:
                            inner = file.resolve().relative_to(ROOT).as_posix()
                            assert not excluded_by_dockerignore(inner), f"{inner} is excluded by .dockerignore"
                    checked += 1
    assert checked > 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_use_pinned_slim_bases_and_run_as_a_non_root_user(dockerfile: Path) -> None:
    stages = parse_dockerfile(dockerfile)
    names = {stage.name for stage in stages}
    for stage in stages:
        if dockerfile == GPU_DOCKERFILE:  # CUDA and cuDNN come with NVIDIA's runtime image, pinned to a release
            assert stage.base in names or CUDA_BASE.fullmatch(stage.base), stage.base
        else:
            assert stage.base in names or stage.base == "python:3.11-slim-bookworm", stage.base
        for arguments in stage.arguments_of("COPY"):
            image = re.search(r"--from=(\S+)", arguments)
            if image and image[1] not in names:
                assert re.search(r":\d+\.\d+\.\d+$", image[1]), f"{image[1]} is not pinned to a release"
    final_stages = [stage for stage in stages if stage.arguments_of("CMD")]
    assert final_stages
    for stage in final_stages:
        users = stage.arguments_of("USER")
        assert users, f"{stage.name} runs as root"
        assert users[-1].split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize(
    ("dockerfile", "service", "variable"),
    [
        ("gateway.Dockerfile", "gateway", "GATEWAY_PORT"),
        ("inference.Dockerfile", "inference", "INFERENCE_PORT"),
        ("inference-gpu.Dockerfile", "inference", "INFERENCE_PORT"),
    ],
)
def test_serving_images_expose_the_port_they_listen_on_and_check_a_real_readiness_route(
    dockerfile: str, service: str, variable: str
) -> None:
    final = parse_dockerfile(ROOT / "docker" / dockerfile)[-1]
    default_port = re.search(rf"{variable}=(\d+)", " ".join(final.arguments_of("ENV")))
    assert default_port, f"the image sets {variable}"
    assert final.arguments_of("EXPOSE") == [default_port[1]]
    (healthcheck,) = final.arguments_of("HEALTHCHECK")
    assert 'CMD ["python", "-c",' in healthcheck
    assert f"os.environ.get('{variable}', '{default_port[1]}')" in healthcheck
    path = urlsplit("http://host" + re.search(r"'(/[^']*)'", healthcheck)[1]).path  # type: ignore[index]
    assert path in app_routes(service)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_no_secret_is_baked_into_an_image(dockerfile: Path) -> None:
    for stage in parse_dockerfile(dockerfile):
        for keyword in ("ENV", "ARG"):
            for arguments in stage.arguments_of(keyword):
                assert not re.search(r"TOKEN|SECRET|PASSWORD|API_KEY", arguments, flags=re.IGNORECASE), arguments


@pytest.mark.parametrize("service", sorted(name for name in BUILDS if name.startswith("inference")))
def test_the_image_an_inference_replica_runs_never_installs_torch(service: str) -> None:
    stages = parse_dockerfile(ROOT / BUILDS[service]["dockerfile"])
    assert stages[-1].name == "runtime", "runtime must be the default target"
    runs = [run for stage in stage_closure(stages, BUILDS[service]["target"]) for run in stage.arguments_of("RUN")]
    installs = pip_installs(runs)
    assert any(".[inference]" in command for command in installs)
    for command in installs:
        assert "torch" not in command.lower(), command
        assert "export" not in command, command
    assert any("find_spec('torch') is None" in run for run in runs), "the build should prove torch is absent"


def test_the_gpu_image_installs_onnxruntime_gpu_alone_and_proves_it_in_the_build() -> None:
    stages = parse_dockerfile(GPU_DOCKERFILE)
    assert stages[-1].name == "runtime", "runtime must be the default target"
    runs = [run for stage in stage_closure(stages, "runtime") for run in stage.arguments_of("RUN")]
    installs = pip_installs(runs)
    assert any('".[gpu]"' in command for command in installs)
    for command in installs:  # the CPU onnxruntime (the inference and export extras) would shadow the GPU one
        assert not re.search(r"\.\[[^]]*\b(inference|export)\b", command), command
        assert "torch" not in command.lower(), command
    proof = " ".join(runs)
    assert "'CUDAExecutionProvider' in onnxruntime.get_available_providers()" in proof
    assert "find_spec('torch') is None" in proof
    assert "d.metadata['Name'] == 'onnxruntime'" in proof
    assert "INFERENCE_DEVICE=cuda" in " ".join(stages[-1].arguments_of("ENV")), "no silent CPU fallback"


def test_the_gpu_extra_replaces_the_cpu_runtime_with_the_same_companions() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    gpu = {requirement.split("==")[0]: requirement for requirement in extras["gpu"]}
    inference = {requirement.split("==")[0]: requirement for requirement in extras["inference"]}
    assert "onnxruntime" not in gpu
    assert re.fullmatch(r"onnxruntime-gpu==\d+\.\d+\.\d+", gpu.pop("onnxruntime-gpu"))
    # OpenVINO is a CPU runtime: the GPU image serves on CUDA through onnxruntime alone
    assert gpu == {name: pin for name, pin in inference.items() if name not in ("onnxruntime", "openvino")}


def test_the_export_image_installs_the_cpu_build_of_torch() -> None:
    stages = parse_dockerfile(ROOT / BUILDS["export"]["dockerfile"])
    runs = [run for stage in stage_closure(stages, BUILDS["export"]["target"]) for run in stage.arguments_of("RUN")]
    assert any(".[export]" in command and "download.pytorch.org/whl/cpu" in command for command in pip_installs(runs))


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    for path in (".git/HEAD", ".venv/bin/python", ".env", "data/x", "logs/gateway.jsonl", "models/m/model.onnx"):
        assert excluded_by_dockerignore(path), path
    for path in ("pyproject.toml", "README.md", "gateway/app.py", "inference/__init__.py", "contracts/problem.py"):
        assert not excluded_by_dockerignore(path), path
    assert excluded_by_dockerignore("gateway/__pycache__/app.cpython-311.pyc")
