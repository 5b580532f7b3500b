"""The Helm chart's pods: the model export Job and the inference pods that wait for it, and how pods run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.helm_chart import VALUE_SETS, Manifest, Rendered, container, plain_env, render
from tests.deploy.tools import ROOT

WRITABLE_DIRS = ("GATEWAY_DATA_DIR", "GATEWAY_LOG_DIR", "INFERENCE_LOG_DIR", "HF_HOME", "HOME")


@pytest.fixture(params=list(VALUE_SETS), scope="module")
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(VALUE_SETS[request.param])


def export_job(rendered: Rendered) -> Manifest:
    (job,) = rendered.all("Job")
    return job


def pod_env(spec: Manifest, model_dir: Path) -> dict[str, str]:
    """The container's plain environment, with the models volume at ``model_dir`` instead of /models."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("INFERENCE_", "HF_"))}
    return {**env, **plain_env(spec), "INFERENCE_MODEL_DIR": str(model_dir)}


def run_export_job(rendered: Rendered, model_dir: Path, fake_bin: Path) -> list[str]:
    """The Job's command for real, with a ``python`` that runs ``-c`` and only prints any other call."""
    fake_bin.mkdir(exist_ok=True)
    fake_python = fake_bin / "python"
    fake_python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec "{sys.executable}" "$@"; fi\nprintf "%s\\n" "$@"\n',
        encoding="utf-8",
    )
    fake_python.chmod(0o755)
    (spec,) = export_job(rendered)["spec"]["template"]["spec"]["containers"]
    env = pod_env(spec, model_dir) | {"PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(spec["command"], env=env, capture_output=True, text=True, check=True, timeout=120)
    return result.stdout.splitlines()


def wait_for_model(rendered: Rendered, model_dir: Path, timeout_s: float) -> subprocess.CompletedProcess[str] | None:
    """The inference pods' init container for real; None when it was still waiting after ``timeout_s``."""
    (init,) = rendered.deployment("inference")["spec"]["template"]["spec"]["initContainers"]
    command = [sys.executable if part == "python" else part for part in init["command"]]
    try:
        return subprocess.run(
            command, env=pod_env(init, model_dir), capture_output=True, text=True, check=False, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return None


def test_inference_pods_wait_for_exactly_the_folder_the_export_job_writes(rendered: Rendered, tmp_path: Path) -> None:
    models = tmp_path / "models"
    arguments = run_export_job(rendered, models, tmp_path / "bin")
    assert arguments[:2] == ["-m", "inference.export"]
    assert "--if-missing" in arguments
    output = Path(arguments[arguments.index("--output") + 1])
    assert output.parent == models

    assert wait_for_model(rendered, models, timeout_s=6) is None, "the pod must wait while the folder is missing"

    output.mkdir(parents=True)
    (output / "manifest.json").write_text("{}", encoding="utf-8")
    finished = wait_for_model(rendered, models, timeout_s=60)
    assert finished is not None
    assert finished.returncode == 0, finished.stderr
    assert str(output) in finished.stdout


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_export_and_the_server_agree_on_model_and_precision(precision: str) -> None:
    rendered = render(sets=(f"inference.precision={precision}",))
    job = plain_env(export_job(rendered)["spec"]["template"]["spec"]["containers"][0])
    server = plain_env(container(rendered.deployment("inference"), "inference"))
    keys = ("INFERENCE_MODEL", "INFERENCE_PRECISION", "INFERENCE_MODEL_DIR")
    assert {key: job[key] for key in keys} == {key: server[key] for key in keys}
    assert server["INFERENCE_PRECISION"] == precision


def test_a_new_model_or_precision_is_a_new_job_and_an_unchanged_one_keeps_its_name() -> None:
    """A Job's template is immutable: an upgrade that changed it in place would be refused."""
    fp32 = export_job(render())["metadata"]["name"]
    assert export_job(render(sets=("gateway.replicas=5",)))["metadata"]["name"] == fp32
    assert export_job(render(sets=("inference.precision=int8",)))["metadata"]["name"] != fp32
    assert export_job(render(sets=("inference.model=tiny-random",)))["metadata"]["name"] != fp32


def claim_of(pod_spec: Manifest) -> str:
    (volume,) = [item for item in pod_spec["volumes"] if item["name"] == "models"]
    claim: str = volume["persistentVolumeClaim"]["claimName"]
    return claim


def test_the_job_writes_and_the_inference_pods_read_the_same_volume(rendered: Rendered) -> None:
    job_spec = export_job(rendered)["spec"]["template"]["spec"]
    inference_spec = rendered.deployment("inference")["spec"]["template"]["spec"]
    assert claim_of(job_spec) == claim_of(inference_spec)
    created = [item["metadata"]["name"] for item in rendered.all("PersistentVolumeClaim")]
    assert created in ([], [claim_of(job_spec)])
    mounts = {item["name"]: item for item in inference_spec["containers"][0]["volumeMounts"]}
    assert mounts["models"].get("readOnly") is True, "serving replicas never write the model"
    job_mounts = {item["name"]: item for item in job_spec["containers"][0]["volumeMounts"]}
    assert not job_mounts["models"].get("readOnly"), "the export writes the model"


def dockerfile_uid(name: str) -> int:
    match = re.search(r"ARG APP_UID=(\d+)", (ROOT / "docker" / name).read_text(encoding="utf-8"))
    assert match
    return int(match[1])


def test_pods_run_as_the_images_non_root_user_on_a_read_only_root(rendered: Rendered) -> None:
    uid = dockerfile_uid("gateway.Dockerfile")
    assert uid == dockerfile_uid("inference.Dockerfile")
    for spec in rendered.pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == uid
        for item in spec["containers"] + spec.get("initContainers", []):
            assert item["securityContext"]["readOnlyRootFilesystem"] is True, item["name"]
            assert item["securityContext"]["allowPrivilegeEscalation"] is False, item["name"]


def test_every_folder_a_container_writes_is_a_writable_mount(rendered: Rendered) -> None:
    for spec in rendered.pod_specs():
        for item in spec["containers"]:
            writable = [mount["mountPath"] for mount in item["volumeMounts"] if not mount.get("readOnly")]
            env = plain_env(item)
            for folder in [env[key] for key in WRITABLE_DIRS if key in env] + ["/tmp"]:
                assert any(folder == path or folder.startswith(path + "/") for path in writable), (item["name"], folder)
