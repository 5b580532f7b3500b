"""The deployment files, checked without Docker: compose file, Dockerfiles, .dockerignore, script.sh, images/."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.optional import skip_or_fail_in_ci

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
SCRIPT = ROOT / "script.sh"
IMAGES = ROOT / "images"
ATTRIBUTION = IMAGES / "ATTRIBUTION.md"
VENV_BIN = Path(sys.executable).parent
GIB = 1024**3


def venv_tool(name: str) -> Path:
    tool = VENV_BIN / name
    assert tool.exists(), f"{tool} is missing: install the dev extra (pip install -e '.[dev]')"
    return tool


# ---- compose --------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation for the forms this file uses: ``$$``, ``${NAME}`` and ``${NAME:-default}``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match["name"]) or match["default"] or ""

    return INTERPOLATION.sub(replace, value)


def environment_of(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    return {key: interpolate(str(value), env or {}) for key, value in service.get("environment", {}).items()}


def memory_bytes(size: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", str(size).lower())
    assert match, f"unreadable memory size {size!r}"
    return int(float(match[1]) * 1024 ** "bkmg".index(match[2] or "b"))


def build_pairs() -> list[tuple[str, Path, Path, str | None]]:
    """(service, build context, Dockerfile, target) for every service that builds."""
    pairs = []
    for name, service in load_compose()["services"].items():
        if "build" in service:
            context = (ROOT / service["build"]["context"]).resolve()
            pairs.append((name, context, context / service["build"]["dockerfile"], service["build"].get("target")))
    return pairs


def test_compose_file_validates_against_the_compose_specification_schema() -> None:
    result = subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_has_no_obsolete_top_level_version(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def test_compose_runs_the_export_the_inference_service_and_the_gateway(services: dict[str, Any]) -> None:
    assert set(services) == {"export", "inference", "gateway"}


def test_gateway_is_published_on_port_8000_and_inference_on_loopback_only(services: dict[str, Any]) -> None:
    assert services["gateway"]["ports"] == ["8000:8000"]
    assert services["inference"]["ports"] == ["127.0.0.1:3000:3000"]
    assert "ports" not in services["export"]


def test_only_the_gateway_listens_on_every_host_interface(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert name == "gateway" or str(port).startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize(("service", "context", "dockerfile", "target"), build_pairs())
def test_every_build_has_an_existing_context_dockerfile_and_target(
    service: str, context: Path, dockerfile: Path, target: str | None
) -> None:
    assert context.is_dir(), service
    assert dockerfile.is_file(), service
    if target is not None:
        assert target in {stage.name for stage in parse_dockerfile(dockerfile)}, (service, target)


def test_inference_and_export_build_the_runtime_and_export_targets(services: dict[str, Any]) -> None:
    assert services["inference"]["build"]["target"] == "runtime"
    assert services["export"]["build"]["target"] == "export"


@pytest.mark.parametrize(("service", "port"), [("gateway", 8000), ("inference", 3000)])
def test_long_running_services_have_a_python_readiness_healthcheck(
    services: dict[str, Any], service: str, port: int
) -> None:
    healthcheck = services[service]["healthcheck"]
    assert healthcheck["test"][:3] == ["CMD", "python", "-c"]
    assert f"http://127.0.0.1:{port}/health/ready" in healthcheck["test"][3]
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in healthcheck, key


def test_gateway_waits_for_a_healthy_inference_which_waits_for_a_completed_export(services: dict[str, Any]) -> None:
    assert services["gateway"]["depends_on"] == {"inference": {"condition": "service_healthy"}}
    assert services["inference"]["depends_on"] == {"export": {"condition": "service_completed_successfully"}}


def test_export_is_a_one_shot_service_that_runs_with_a_plain_up(services: dict[str, Any]) -> None:
    export = services["export"]
    assert export["restart"] == "no"
    assert "profiles" not in export
    assert services["gateway"]["restart"] == services["inference"]["restart"] == "unless-stopped"


def test_named_volumes_are_declared_and_mounted_where_the_services_keep_their_state(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    assert set(compose["volumes"]) == {"gateway-db", "gateway-data", "models"}
    assert "gateway-data:/data" in services["gateway"]["volumes"]
    assert "gateway-db:/db" in services["gateway"]["volumes"]
    assert environment_of(services["gateway"])["DATABASE_URL"] == "sqlite:////db/gateway.sqlite3"
    assert "models:/models" in services["inference"]["volumes"]
    assert "models:/models" in services["export"]["volumes"]
    assert environment_of(services["gateway"])["GATEWAY_DATA_DIR"] == "/data"
    for name in ("inference", "export"):
        assert environment_of(services[name])["INFERENCE_MODEL_DIR"] == "/models"


def test_every_named_volume_a_service_mounts_is_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], (name, mount)


@pytest.mark.parametrize(("service", "variable"), [("gateway", "GATEWAY_LOG_DIR"), ("inference", "INFERENCE_LOG_DIR")])
def test_logs_are_written_to_the_logs_folder_on_the_host(services: dict[str, Any], service: str, variable: str) -> None:
    assert "./logs:/app/logs" in services[service]["volumes"]
    assert environment_of(services[service])[variable] == "/app/logs"


def test_gateway_reaches_inference_by_its_service_name_and_listens_on_every_interface(
    services: dict[str, Any],
) -> None:
    gateway = environment_of(services["gateway"])
    assert gateway["GATEWAY_INFERENCE_URL"] == "http://inference:3000"
    assert gateway["GATEWAY_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert gateway["GATEWAY_PORT"] == "8000"
    inference = environment_of(services["inference"])
    assert inference["INFERENCE_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert inference["INFERENCE_PORT"] == "3000"


def test_export_and_inference_use_the_same_model_and_precision(services: dict[str, Any]) -> None:
    for env in ({}, {"INFERENCE_MODEL": "tiny-random", "INFERENCE_PRECISION": "int8"}):
        export, inference = environment_of(services["export"], env), environment_of(services["inference"], env)
        for key in ("INFERENCE_MODEL", "INFERENCE_PRECISION", "INFERENCE_MODEL_DIR"):
            assert export[key] == inference[key], key
    default = environment_of(services["inference"])
    assert default["INFERENCE_MODEL"] == "Salesforce/blip-image-captioning-large"
    assert default["INFERENCE_PRECISION"] == "fp32"


@pytest.mark.parametrize(
    ("env", "expected_output"),
    [
        ({}, "/models/Salesforce--blip-image-captioning-large-fp32"),
        ({"INFERENCE_MODEL": "tiny-random", "INFERENCE_PRECISION": "int8"}, "/models/tiny-random-int8"),
    ],
)
def test_export_command_writes_the_cache_folder_the_inference_service_reads_and_skips_existing_ones(
    services: dict[str, Any], tmp_path: Path, env: dict[str, str], expected_output: str
) -> None:
    # `python -c ...` runs for real (it asks the inference package for the folder name); any other
    # python command only prints its arguments, one per line.
    fake_python = tmp_path / "python"
    fake_python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec "{sys.executable}" "$@"; fi\nprintf "%s\\n" "$@"\n',
        encoding="utf-8",
    )
    fake_python.chmod(0o755)
    command = [interpolate(part, env) for part in services["export"]["command"]]
    assert command[:2] == ["bash", "-c"]
    container_env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", **environment_of(services["export"], env)}
    result = subprocess.run(command, env=container_env, capture_output=True, text=True, check=True)
    arguments = result.stdout.splitlines()
    assert arguments[:2] == ["-m", "inference.export"]
    assert arguments[arguments.index("--output") + 1] == expected_output
    assert arguments[arguments.index("--model") + 1] == container_env["INFERENCE_MODEL"]
    assert arguments[arguments.index("--precision") + 1] == container_env["INFERENCE_PRECISION"]
    assert "--if-missing" in arguments


@pytest.mark.parametrize(("service", "least_gib"), [("gateway", 1), ("inference", 4), ("export", 8)])
def test_memory_limits_are_sized_for_blip_large(services: dict[str, Any], service: str, least_gib: int) -> None:
    limit = services[service]["deploy"]["resources"]["limits"]["memory"]
    assert memory_bytes(limit) >= least_gib * GIB


def test_hf_token_comes_from_an_optional_env_file_that_the_gateway_never_sees(services: dict[str, Any]) -> None:
    for name in ("export", "inference"):
        assert services[name]["env_file"] == [{"path": ".env", "required": False}], name
    assert "env_file" not in services["gateway"]
    assert not any("HF_TOKEN" in str(value) for value in services["gateway"].get("environment", {}).values())


def test_env_example_documents_hf_token_and_every_variable_the_compose_file_reads() -> None:
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    names = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE_FILE.read_text(encoding="utf-8")))
    assert "HF_TOKEN" in example
    for name in sorted(names):
        assert re.search(rf"^#? ?{name}=", example, flags=re.MULTILINE), name


# ---- Dockerfiles ----------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def arguments_of(self, keyword: str) -> list[str]:
        return [item.arguments for item in self.instructions if item.keyword == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comment lines dropped (as Docker does)."""
    stages: list[Stage] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#") or (not raw.strip() and not pending):
            continue
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        pending = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(stages))
            stages.append(Stage(name=name, base=words[0]))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments.strip()))
    return stages


def copy_sources(arguments: str) -> list[str] | None:
    """The sources of a COPY/ADD, or None for a copy from another stage or image."""
    words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    flags = [word for word in words if word.startswith("--")]
    if any(flag.startswith("--from=") for flag in flags):
        return None
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def stage_closure(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and every stage it builds on or copies from."""
    by_name = {stage.name: stage for stage in stages}
    seen: dict[str, Stage] = {}
    todo = [name]
    while todo:
        current = by_name[todo.pop()]
        if current.name in seen:
            continue
        seen[current.name] = current
        if current.base in by_name:
            todo.append(current.base)
        for arguments in current.arguments_of("COPY"):
            todo.extend(
                word.split("=", 1)[1]
                for word in arguments.split()
                if word.startswith("--from=") and word.split("=", 1)[1] in by_name
            )
    return list(seen.values())


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if token.startswith("[") and token.endswith("]"):
            parts.append(token)
        else:
            parts.append({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token)))
    return re.compile("".join(parts))


def excluded_by_dockerignore(relative: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matches a path or any folder above it."""
    parts = Path(relative).parts
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for pattern in dockerignore_patterns():
        negated = pattern.startswith("!")
        regex = dockerignore_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


DOCKERFILE_CASES = [(dockerfile, context) for _, context, dockerfile, _ in build_pairs()]
UNIQUE_DOCKERFILES = sorted({dockerfile for dockerfile, _ in DOCKERFILE_CASES})


def test_the_compose_file_builds_both_dockerfiles() -> None:
    assert [path.name for path in UNIQUE_DOCKERFILES] == ["gateway.Dockerfile", "inference.Dockerfile"]


@pytest.mark.parametrize("dockerfile", UNIQUE_DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_reports_no_errors(dockerfile: Path) -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", "--failure-threshold", "error", dockerfile],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("dockerfile", "context"), sorted(set(DOCKERFILE_CASES)), ids=lambda value: value.name)
def test_every_path_a_dockerfile_copies_exists_in_the_build_context_and_is_not_dockerignored(
    dockerfile: Path, context: Path
) -> None:
    checked = 0
    for stage in parse_dockerfile(dockerfile):
        for keyword in ("COPY", "ADD"):
            for arguments in stage.arguments_of(keyword):
                for source in copy_sources(arguments) or []:
                    path = context / source
                    assert path.exists(), f"{dockerfile.name}: {keyword} {source} does not exist"
                    relative = path.resolve().relative_to(context).as_posix()
                    assert not excluded_by_dockerignore(relative), f"{source} is excluded by .dockerignore"
                    files = path.rglob("*") if path.is_dir() else [path]
                    for file in files:
                        if file.suffix == ".py" or file.name in {"py.typed", "pyproject.toml"}:
                            inner = file.resolve().relative_to(context).as_posix()
                            assert not excluded_by_dockerignore(inner), f"{inner} is excluded by .dockerignore"
                    checked += 1
    assert checked > 0


@pytest.mark.parametrize("dockerfile", UNIQUE_DOCKERFILES, ids=lambda path: path.name)
def test_images_use_pinned_slim_bases_and_run_as_a_non_root_user(dockerfile: Path) -> None:
    stages = parse_dockerfile(dockerfile)
    names = {stage.name for stage in stages}
    for stage in stages:
        assert stage.base in names or stage.base == "python:3.11-slim-bookworm", stage.base
    final_stages = [stage for stage in stages if stage.arguments_of("CMD")]
    assert final_stages
    for stage in final_stages:
        users = stage.arguments_of("USER")
        assert users, f"{stage.name} runs as root"
        assert users[-1].split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize(("dockerfile", "port"), [("gateway.Dockerfile", "8000"), ("inference.Dockerfile", "3000")])
def test_serving_images_expose_their_port_and_check_their_health_with_python(dockerfile: str, port: str) -> None:
    final = parse_dockerfile(ROOT / "docker" / dockerfile)[-1]
    assert final.arguments_of("EXPOSE") == [port]
    (healthcheck,) = final.arguments_of("HEALTHCHECK")
    assert 'CMD ["python", "-c",' in healthcheck
    assert "/health/ready" in healthcheck


@pytest.mark.parametrize("dockerfile", UNIQUE_DOCKERFILES, ids=lambda path: path.name)
def test_no_secret_is_baked_into_an_image(dockerfile: Path) -> None:
    for stage in parse_dockerfile(dockerfile):
        for keyword in ("ENV", "ARG"):
            for arguments in stage.arguments_of(keyword):
                assert not re.search(r"TOKEN|SECRET|PASSWORD|API_KEY", arguments, flags=re.IGNORECASE), arguments


def pip_installs(runs: list[str]) -> list[str]:
    """The ``pip install ...`` commands inside RUN lines."""
    commands = [command.strip() for run in runs for command in re.split(r"&&|;|\|\|", run)]
    return [command for command in commands if re.match(r"(?:python -m )?pip install\b", command)]


def test_inference_runtime_image_never_installs_torch() -> None:
    stages = parse_dockerfile(ROOT / "docker" / "inference.Dockerfile")
    assert stages[-1].name == "runtime", "runtime must be the default target"
    runtime_runs = [run for stage in stage_closure(stages, "runtime") for run in stage.arguments_of("RUN")]
    installs = pip_installs(runtime_runs)
    assert any(".[inference]" in command for command in installs)
    for command in installs:
        assert "torch" not in command.lower(), command
        assert "export" not in command, command
    assert any("find_spec('torch') is None" in run for run in runtime_runs), "the build should prove torch is absent"
    export_runs = [run for stage in stage_closure(stages, "export") for run in stage.arguments_of("RUN")]
    assert any(
        ".[export]" in command and "download.pytorch.org/whl/cpu" in command for command in pip_installs(export_runs)
    )


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    for path in (".git/HEAD", ".venv/bin/python", ".env", "data/x", "logs/gateway.jsonl", "models/m/model.onnx"):
        assert excluded_by_dockerignore(path), path
    for path in ("pyproject.toml", "README.md", "gateway/app.py", "inference/__init__.py", "contracts/problem.py"):
        assert not excluded_by_dockerignore(path), path
    assert excluded_by_dockerignore("gateway/__pycache__/app.cpython-311.pyc")


# ---- script.sh ------------------------------------------------------------------------------------


def test_upload_script_is_executable_and_passes_shellcheck() -> None:
    assert os.access(SCRIPT, os.X_OK)
    lines = SCRIPT.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    result = subprocess.run([venv_tool("shellcheck"), SCRIPT], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class StubGateway:
    """Just enough of the gateway's API for script.sh: uploads, one poll in ``processing``, stats."""

    never_finish: bool = False
    uploads: list[str] = field(default_factory=list)
    upload_authorizations: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if method == "GET" and path == "/health/live":
                return 200, {"status": "alive"}
            if method == "GET" and path == "/api/stats":
                return 200, {"total": len(self.uploads)}
            if method == "POST" and path == "/api/images":
                self.upload_authorizations.append(headers.get("Authorization", ""))
                match = re.search(rb'filename="((?:[^"\\]|\\.)*)"', body)
                filename = match[1].decode() if match else ""
                if filename.endswith(".txt"):
                    return 415, {"title": "Unsupported image format", "status": 415, "detail": "Not an image."}
                self.uploads.append(filename)
                return 202, {"id": f"img{len(self.uploads)}", "filename": filename, "status": "pending"}
            if method == "GET" and path.startswith("/api/images/img"):
                image_id = path.rsplit("/", 1)[1]
                filename = self.uploads[int(image_id.removeprefix("img")) - 1]
                self.polls[image_id] = self.polls.get(image_id, 0) + 1
                if self.polls[image_id] < 2 or self.never_finish:
                    return 200, {"id": image_id, "status": "processing", "caption": None, "error": None}
                if filename.startswith("broken"):
                    return 200, {"id": image_id, "status": "failed", "caption": None, "error": "The data is corrupt."}
                caption = {"text": f"a caption of {filename}", "status": "completed"}
                return 200, {"id": image_id, "status": "completed", "caption": caption, "error": None}
            return 404, {"title": "Not found", "status": 404}


@pytest.fixture
def stub_gateway() -> Iterator[tuple[StubGateway, str]]:
    stub = StubGateway()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, payload = stub.handle(method, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield stub, f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_script(folder: Path, gateway_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None:
        skip_or_fail_in_ci("curl is not installed (apt-get install curl); script.sh needs it.")
    script_env = {key: value for key, value in os.environ.items() if key != "GATEWAY_API_KEY"}
    script_env.update({"GATEWAY_URL": gateway_url, "POLL_INTERVAL_S": "0.05", **env})
    return subprocess.run([SCRIPT, folder], env=script_env, capture_output=True, text=True, check=False, timeout=60)


def make_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n fake image bytes for " + name.encode())
    return folder


def test_script_uploads_every_file_including_names_with_spaces_and_prints_captions_and_stats(
    stub_gateway: tuple[StubGateway, str], tmp_path: Path
) -> None:
    stub, url = stub_gateway
    folder = make_folder(tmp_path, "a photo of mine.jpg", "b.png", "ATTRIBUTION.md", ".hidden.jpg")

    result = run_script(folder, url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert stub.uploads == ["a photo of mine.jpg", "b.png"]
    assert "[1/2] a photo of mine.jpg -> img1" in result.stdout
    assert "[2/2] b.png -> img2" in result.stdout
    assert re.search(r"a photo of mine\.jpg +completed +a caption of a photo of mine\.jpg", result.stdout)
    assert '"total": 2' in result.stdout


def test_script_fails_when_an_upload_is_refused_or_an_image_ends_failed(
    stub_gateway: tuple[StubGateway, str], tmp_path: Path
) -> None:
    _, url = stub_gateway
    folder = make_folder(tmp_path, "broken.jpg", "good.jpg", "notes.txt")

    result = run_script(folder, url)

    assert result.returncode == 1
    assert "[3/3] notes.txt -> refused, HTTP 415: Unsupported image format: Not an image." in result.stdout
    assert re.search(r"broken\.jpg +failed +The data is corrupt\.", result.stdout)
    assert re.search(r"good\.jpg +completed", result.stdout)


def test_script_gives_up_after_the_poll_timeout(stub_gateway: tuple[StubGateway, str], tmp_path: Path) -> None:
    stub, url = stub_gateway
    stub.never_finish = True

    result = run_script(make_folder(tmp_path, "slow.jpg"), url, POLL_TIMEOUT_S="0")

    assert result.returncode == 1
    assert "Timed out" in result.stderr
    assert re.search(r"slow\.jpg +processing +not finished", result.stdout)


def test_script_sends_the_api_key_as_a_bearer_token(stub_gateway: tuple[StubGateway, str], tmp_path: Path) -> None:
    stub, url = stub_gateway

    result = run_script(make_folder(tmp_path, "one.jpg"), url, GATEWAY_API_KEY="s3cret")

    assert result.returncode == 0, result.stdout + result.stderr
    assert stub.upload_authorizations == ["Bearer s3cret"]


def test_script_exits_2_when_the_gateway_cannot_be_reached(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as server:
        unused_port = server.server_address[1]

    result = run_script(make_folder(tmp_path, "one.jpg"), f"http://127.0.0.1:{unused_port}")

    assert result.returncode == 2
    assert "cannot reach the gateway" in result.stderr


# ---- images/ --------------------------------------------------------------------------------------


def sample_images() -> list[Path]:
    return sorted(path for path in IMAGES.iterdir() if path.is_file() and path != ATTRIBUTION)


def test_images_folder_holds_eight_to_twelve_jpeg_or_png_photos() -> None:
    images = sample_images()
    assert 8 <= len(images) <= 12
    magic = {path.name: path.read_bytes()[:8] for path in images}
    assert all(head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) for head in magic.values()), magic
    assert any(head.startswith(b"\x89PNG") for head in magic.values())
    assert any(" " in path.name for path in images), "one file name must contain a space"


def test_attribution_names_every_image_with_its_sha256_and_licence() -> None:
    attribution = ATTRIBUTION.read_text(encoding="utf-8")
    for path in sample_images():
        assert f"`{path.name}`" in attribution, path.name
        assert hashlib.sha256(path.read_bytes()).hexdigest() in attribution, path.name
    assert "CC BY-SA 4.0" in attribution
    assert "Attribution-ShareAlike 4.0 International" in attribution
