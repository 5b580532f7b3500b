"""The compose stacks, checked without Docker: the one-box default and the scale-out override laid over it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.compose_model import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    SCALE_FILE,
    Service,
    environment_of,
    host_path_of,
    interpolate,
    load,
    memory_bytes,
    merged_scale,
)
from tests.deploy.tools import app_routes, venv_tool

GIB = 1024**3
STACKS = {"one-box": lambda: load(COMPOSE_FILE), "scale-out": merged_scale}
MODEL_ENV = ("INFERENCE_MODEL", "INFERENCE_PRECISION", "INFERENCE_MODEL_DIR")


@pytest.fixture(params=list(STACKS), scope="module")
def stack(request: pytest.FixtureRequest) -> dict[str, Any]:
    document: dict[str, Any] = STACKS[request.param]()
    return document


def kind_of(service: Service) -> str:
    """``gateway``, ``inference`` (a serving replica), ``export`` or ``other``, from what the service reads."""
    env = environment_of(service)
    if "GATEWAY_PORT" in env:
        return "gateway"
    if "INFERENCE_PORT" in env:
        return "inference"
    return "export" if "INFERENCE_MODEL" in env else "other"


def of_kind(stack: dict[str, Any], kind: str) -> dict[str, Service]:
    return {name: service for name, service in stack["services"].items() if kind_of(service) == kind}


def listening_port(service: Service) -> str:
    env = environment_of(service)
    return env.get("GATEWAY_PORT") or env["INFERENCE_PORT"]


@pytest.mark.parametrize("which", ["docker-compose.yml", "docker-compose.scale.yml", "merged"])
def test_compose_files_validate_against_the_compose_specification_schema(which: str, tmp_path: Path) -> None:
    path = {"docker-compose.yml": COMPOSE_FILE, "docker-compose.scale.yml": SCALE_FILE}.get(which)
    if path is None:
        path = tmp_path / "merged.yml"
        path.write_text(yaml.safe_dump(merged_scale()), encoding="utf-8")
    result = subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_gateways_listen_on_every_host_interface(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        for port in service.get("ports", []):
            assert kind_of(service) == "gateway" or str(port).startswith("127.0.0.1:"), (name, port)


def test_no_two_services_publish_the_same_host_port(stack: dict[str, Any]) -> None:
    services = stack["services"].values()
    published = [str(port).rsplit(":", 1)[0] for service in services for port in service.get("ports", [])]
    assert len(published) == len(set(published)), published


def test_published_ports_lead_to_the_port_the_service_listens_on(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        for port in service.get("ports", []):
            assert str(port).rsplit(":", 1)[1] == listening_port(service), (name, port)


def test_healthchecks_ask_a_real_readiness_route_on_the_port_the_service_listens_on(stack: dict[str, Any]) -> None:
    checked = 0
    for name, service in stack["services"].items():
        if kind_of(service) not in {"gateway", "inference"}:
            continue
        command = service["healthcheck"]["test"]
        assert command[:3] == ["CMD", "python", "-c"], name
        url = urlsplit(re.search(r"http://[^']+", command[3])[0])  # type: ignore[index]
        assert str(url.port) == listening_port(service), name
        assert url.path == "/health/ready"
        assert url.path in app_routes(kind_of(service)), name
        checked += 1
    assert checked >= 2


def test_every_dependency_condition_can_be_met(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, (name, target)
            assert "profiles" not in services[target], f"a plain `up` would not start {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
            if rule["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must run once and exit"


def test_every_named_volume_a_service_mounts_is_declared(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in stack["volumes"], (name, mount)


def state_dirs(service: Service) -> list[str]:
    env = environment_of(service)
    keys = ("GATEWAY_DATA_DIR", "GATEWAY_LOG_DIR", "INFERENCE_MODEL_DIR", "INFERENCE_LOG_DIR")
    dirs = [env[key] for key in keys if key in env]
    sqlite = re.fullmatch(r"sqlite:///(/.+)/[^/]+", env.get("DATABASE_URL", ""))
    return dirs + ([sqlite[1]] if sqlite else [])


def test_state_and_logs_live_on_volumes_that_outlive_the_container(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        for folder in state_dirs(service):
            assert host_path_of(service, folder) is not None, f"{name}: {folder} is inside the container"


def test_no_two_processes_write_the_same_log_file(stack: dict[str, Any]) -> None:
    files = []
    for service in stack["services"].values():
        env = environment_of(service)
        files.extend(
            f"{host_path_of(service, env[f'{kind.upper()}_LOG_DIR'])}/{kind}.jsonl"
            for kind in ("gateway", "inference")
            if f"{kind.upper()}_LOG_DIR" in env
        )
    assert len(files) == len(set(files)), files


def test_every_gateway_sends_captions_to_every_inference_replica_on_its_listening_port(stack: dict[str, Any]) -> None:
    replicas = of_kind(stack, "inference")
    for name, gateway in of_kind(stack, "gateway").items():
        urls = [urlsplit(entry) for entry in environment_of(gateway)["GATEWAY_INFERENCE_URL"].split(",")]
        assert {url.hostname for url in urls} == set(replicas), name
        for url in urls:
            replica = environment_of(replicas[str(url.hostname)])
            assert str(url.port) == replica["INFERENCE_PORT"]
            assert replica["INFERENCE_HOST"] == "0.0.0.0"  # noqa: S104 - reachable from other containers


@pytest.mark.parametrize("env", [{}, {"INFERENCE_MODEL": "tiny-random", "INFERENCE_PRECISION": "int8"}])
def test_export_and_every_inference_replica_agree_on_the_model_folder(
    stack: dict[str, Any], env: dict[str, str]
) -> None:
    (export,) = of_kind(stack, "export").values()
    expected = {key: environment_of(export, env)[key] for key in MODEL_ENV}
    for name, replica in of_kind(stack, "inference").items():
        assert {key: environment_of(replica, env)[key] for key in MODEL_ENV} == expected, name


@pytest.mark.parametrize(
    ("env", "expected_output"),
    [
        ({}, "/models/Salesforce--blip-image-captioning-large-fp32"),
        ({"INFERENCE_MODEL": "tiny-random", "INFERENCE_PRECISION": "int8"}, "/models/tiny-random-int8"),
    ],
)
def test_export_command_writes_the_cache_folder_the_inference_service_reads_and_skips_existing_ones(
    tmp_path: Path, env: dict[str, str], expected_output: str
) -> None:
    # `python -c ...` runs for real (it asks the inference package for the folder name); any other
    # python command only prints its arguments, one per line.
    export = load(COMPOSE_FILE)["services"]["export"]
    fake_python = tmp_path / "python"
    fake_python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec "{sys.executable}" "$@"; fi\nprintf "%s\\n" "$@"\n',
        encoding="utf-8",
    )
    fake_python.chmod(0o755)
    command = [interpolate(part, env) for part in export["command"]]
    container_env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", **environment_of(export, env)}
    result = subprocess.run(command, env=container_env, capture_output=True, text=True, check=True)
    arguments = result.stdout.splitlines()
    assert arguments[:2] == ["-m", "inference.export"]
    assert arguments[arguments.index("--output") + 1] == expected_output
    assert arguments[arguments.index("--model") + 1] == container_env["INFERENCE_MODEL"]
    assert arguments[arguments.index("--precision") + 1] == container_env["INFERENCE_PRECISION"]
    assert "--if-missing" in arguments


def test_memory_limits_cover_blip_large_peak_rss(stack: dict[str, Any]) -> None:
    least_gib = {"gateway": 1, "inference": 4, "export": 8}
    for name, service in stack["services"].items():
        if kind_of(service) in least_gib:
            limit = service["deploy"]["resources"]["limits"]["memory"]
            assert memory_bytes(limit) >= least_gib[kind_of(service)] * GIB, name


def test_hf_token_comes_from_an_optional_env_file_that_gateways_never_see(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        if kind_of(service) in {"export", "inference"}:
            assert service["env_file"] == [{"path": ".env", "required": False}], name
        if kind_of(service) == "gateway":
            assert "env_file" not in service
            assert not any("HF_TOKEN" in value for value in environment_of(service).values())


@pytest.mark.parametrize("compose_file", [COMPOSE_FILE, SCALE_FILE], ids=lambda path: path.name)
def test_env_example_documents_every_variable_a_compose_file_reads(compose_file: Path) -> None:
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    names = set(re.findall(r"(?<!\$)\$\{(\w+)", compose_file.read_text(encoding="utf-8")))
    assert "HF_TOKEN" in example
    for name in sorted(names):
        assert re.search(rf"^#? ?{name}=", example, flags=re.MULTILINE), name
