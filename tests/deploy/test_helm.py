"""The Helm chart: helm lint, strict Kubernetes schemas, and what the rendered objects do together."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.helm_chart import (
    CHART,
    KUBERNETES_VERSION,
    VALUE_SETS,
    Rendered,
    container,
    env_entries,
    helm,
    memory_bytes,
    plain_env,
    pod_labels,
    render,
    render_text,
)
from tests.deploy.tools import app_routes, venv_tool
from tests.optional import skip_or_fail_in_ci

MB = 10**6
# Peak RSS from `make bench-inference` (docs/benchmarks.md, "Inference"): BLIP-large, batch 1 and batch 4.
PEAK_RSS = {"fp32": (2355 * MB, 2822 * MB), "int8": (869 * MB, 1273 * MB)}
CREDENTIALS = ("DATABASE_URL", "GATEWAY_S3_ACCESS_KEY_ID", "GATEWAY_S3_SECRET_ACCESS_KEY")


@pytest.fixture(params=list(VALUE_SETS), scope="module")
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(VALUE_SETS[request.param])


@pytest.mark.parametrize("values", list(VALUE_SETS))
def test_helm_lint_passes(values: str) -> None:
    args = [arg for path in VALUE_SETS[values] for arg in ("-f", path)]
    result = helm("lint", "--strict", str(CHART), *args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", list(VALUE_SETS))
def test_rendered_objects_validate_strictly_against_the_kubernetes_schemas(values: str, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(render_text(VALUE_SETS[values]), encoding="utf-8")
    command = [venv_tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(manifests)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_render_and_validation_need_no_network(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"], check=False).returncode:
        skip_or_fail_in_ci("unshare -rn (a user namespace without network) is not available here.")
    manifests = tmp_path / "manifests.yaml"
    script = (
        f'"{venv_tool("helm")}" lint "{CHART}" && "{venv_tool("helm")}" template rel "{CHART}" > "{manifests}"'
        f' && "{venv_tool("kubernetes-validate")}" --strict --quiet -k {KUBERNETES_VERSION} "{manifests}"'
    )
    home = tmp_path / "helm-home"
    env = {"PATH": "/usr/bin:/bin", **{f"HELM_{kind}_HOME": str(home / kind) for kind in ("CACHE", "CONFIG", "DATA")}}
    command = ["unshare", "-rn", "sh", "-c", script]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not home.exists() or not any(home.rglob("*")), "helm downloaded or cached something"


def test_gateways_find_the_inference_replicas_through_the_headless_service(rendered: Rendered) -> None:
    gateway = container(rendered.deployment("gateway"), "gateway")
    url = urlsplit(plain_env(gateway)["GATEWAY_INFERENCE_URL"])
    assert url.scheme == "dns+http"
    service = rendered.get("Service", str(url.hostname))
    assert service["spec"]["clusterIP"] == "None", "each ready pod must be its own DNS record"
    assert not service["spec"].get("publishNotReadyAddresses", False)
    inference = rendered.deployment("inference")
    assert service["spec"]["selector"].items() <= pod_labels(inference).items()
    (port,) = [item for item in service["spec"]["ports"] if item["port"] == url.port]
    server = container(inference, "inference")
    (container_port,) = [item for item in server["ports"] if item["name"] == port["targetPort"]]
    assert str(container_port["containerPort"]) == plain_env(server)["INFERENCE_PORT"]


def test_each_service_selects_the_pods_of_exactly_one_deployment(rendered: Rendered) -> None:
    for service in rendered.all("Service") + rendered.all("PodDisruptionBudget"):
        spec = service["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        matched = [item for item in rendered.all("Deployment") if selector.items() <= pod_labels(item).items()]
        assert len(matched) == 1, service["metadata"]["name"]


def test_credentials_are_read_from_secrets_and_never_written_into_a_pod_spec(rendered: Rendered) -> None:
    entries = env_entries(container(rendered.deployment("gateway"), "gateway"))
    secrets = {item["metadata"]["name"]: item for item in rendered.all("Secret")}
    for name in (*CREDENTIALS, "GATEWAY_API_KEY", "GATEWAY_WEBHOOK_SECRET"):
        if name not in entries:
            assert name not in CREDENTIALS, f"{name} is required"
            continue
        assert "value" not in entries[name], name
        reference = entries[name]["valueFrom"]["secretKeyRef"]
        if reference["name"] in secrets:  # created by the chart from an inline value
            stored = base64.b64decode(secrets[reference["name"]]["data"][reference["key"]]).decode()
            assert stored not in rendered.text, f"{name} appears in clear text"


def test_inline_credentials_go_into_the_chart_secret_and_existing_ones_are_only_referenced() -> None:
    inline = render(VALUE_SETS["scaled-int8"])
    (secret,) = inline.all("Secret")
    database = env_entries(container(inline.deployment("gateway"), "gateway"))["DATABASE_URL"]
    assert database["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    stored = base64.b64decode(secret["data"][database["valueFrom"]["secretKeyRef"]["key"]]).decode()
    assert stored.startswith("postgresql://")
    existing = render(
        sets=("gateway.secrets.databaseUrl.existingSecret=team-db", "gateway.secrets.databaseUrl.key=url")
    )
    assert existing.all("Secret") == [], "nothing to create when every credential is an existing Secret"
    entry = env_entries(container(existing.deployment("gateway"), "gateway"))["DATABASE_URL"]
    assert entry["valueFrom"]["secretKeyRef"] == {"name": "team-db", "key": "url"}
    assert "GATEWAY_API_KEY" not in env_entries(container(existing.deployment("gateway"), "gateway"))


def test_a_missing_required_credential_stops_the_render_with_what_to_set() -> None:
    result = helm("template", "rel", str(CHART), "--set", "gateway.secrets.s3SecretAccessKey.existingSecret=")
    assert result.returncode != 0
    assert "GATEWAY_S3_SECRET_ACCESS_KEY is required: set gateway.secrets.s3SecretAccessKey.value" in result.stderr


@pytest.mark.parametrize("setting", ["inference.precision=fp8", "inference.gpu.count=0"])
def test_values_outside_the_schema_are_refused_before_anything_renders(setting: str) -> None:
    result = helm("template", "rel", str(CHART), "--set", setting)
    assert result.returncode != 0
    assert setting.split("=")[0] in result.stderr, result.stderr


def test_fp16_without_gpu_replicas_stops_the_render_with_what_to_set() -> None:
    # fp16 is for the GPU replicas only: on the CPU it is neither sized nor measured
    result = helm("template", "rel", str(CHART), "--set", "inference.precision=fp16")
    assert result.returncode != 0
    assert "inference.precision=fp16 is for GPU replicas: set inference.gpu.enabled=true" in result.stderr


def test_every_probe_asks_a_real_route_of_its_app_on_a_declared_port(rendered: Rendered) -> None:
    for component in ("gateway", "inference"):
        spec = container(rendered.deployment(component), component)
        ports = {item["name"] for item in spec["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert spec[probe]["httpGet"]["path"] in app_routes(component), (component, probe)
            assert spec[probe]["httpGet"]["port"] in ports, (component, probe)
        assert spec["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert spec["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_inference_is_not_restarted_while_the_model_loads(rendered: Rendered) -> None:
    startup = container(rendered.deployment("inference"), "inference")["startupProbe"]
    assert startup["httpGet"]["path"] == "/health/ready", "liveness must begin only once the model is loaded"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_inference_memory_follows_the_precision_and_covers_the_measured_peak(precision: str) -> None:
    resources = container(render(sets=(f"inference.precision={precision}",)).deployment("inference"), "inference")
    request, limit = (memory_bytes(resources["resources"][key]["memory"]) for key in ("requests", "limits"))
    batch_1, batch_4 = PEAK_RSS[precision]
    assert batch_1 <= request < batch_4 * 1.5
    assert limit >= batch_4
    if precision == "int8":
        assert limit < PEAK_RSS["fp32"][0], "an int8 replica must not reserve what fp32 needs"


def test_the_gateways_keep_every_inference_replica_fed(rendered: Rendered) -> None:
    """Captions in flight are at most gateway pods x GATEWAY_WORKERS: at least two per replica the
    inference deployment can grow to, or added replicas sit idle."""
    gateway = rendered.deployment("gateway")
    workers = int(plain_env(container(gateway, "gateway"))["GATEWAY_WORKERS"])
    autoscalers = [hpa for hpa in rendered.all("HorizontalPodAutoscaler") if hpa["spec"]["scaleTargetRef"]["name"]
                   == rendered.deployment("inference")["metadata"]["name"]]  # fmt: skip
    most_replicas = max([rendered.deployment("inference")["spec"].get("replicas", 1)]
                        + [hpa["spec"]["maxReplicas"] for hpa in autoscalers])  # fmt: skip
    assert gateway["spec"]["replicas"] * workers >= 2 * most_replicas


def test_the_autoscaler_owns_the_inference_replica_count_when_enabled(rendered: Rendered) -> None:
    inference = rendered.deployment("inference")
    autoscalers = rendered.all("HorizontalPodAutoscaler")
    if not autoscalers:
        assert inference["spec"]["replicas"] >= 2
        return
    (autoscaler,) = autoscalers
    assert "replicas" not in inference["spec"], "helm upgrade would reset what the autoscaler chose"
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", inference["metadata"]["name"])
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "cpu" in container(inference, "inference")["resources"]["requests"], "CPU utilization needs a request"


def test_gpu_replicas_run_the_gpu_image_on_cuda_with_one_gpu_each() -> None:
    rendered = render(VALUE_SETS["gpu"])
    pod = rendered.deployment("inference")["spec"]["template"]["spec"]
    inference = container(rendered.deployment("inference"), "inference")
    assert inference["image"].startswith("image-pipeline-inference-gpu:")
    assert {item["image"] for item in pod["initContainers"]} == {inference["image"]}, "one image to pull"
    assert inference["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "cpu" in inference["resources"]["requests"], "the autoscaler's CPU utilization needs a request"
    env = plain_env(inference)
    assert env["INFERENCE_DEVICE"] == "cuda", "a pod without a usable GPU must say so, not serve from the CPU"
    assert env["INFERENCE_MAX_BATCH"] == "16"
    assert env["INFERENCE_PRECISION"] == "fp16"
    assert env["INFERENCE_RUNTIME"] == "onnxruntime", "OpenVINO is a CPU runtime, and not in the GPU image"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


@pytest.mark.parametrize("values", ["default", "scaled-int8"])
def test_cpu_replicas_ask_for_no_gpu_and_run_on_the_cpu(values: str) -> None:
    inference = container(render(VALUE_SETS[values]).deployment("inference"), "inference")
    assert "nvidia.com/gpu" not in str(inference["resources"])
    assert plain_env(inference)["INFERENCE_DEVICE"] == "cpu"
    assert (plain_env(inference)["INFERENCE_RUNTIME"], plain_env(inference)["INFERENCE_OPENVINO_DECODER_WEIGHTS"]) == (
        "auto",
        "bf16",
    )
    assert not inference["image"].startswith("image-pipeline-inference-gpu")
