"""Render the Helm chart with the pip-installed helm, offline, and look objects up in the result."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.tools import ROOT, venv_tool

CHART = ROOT / "deploy" / "helm" / "image-pipeline"
SECOND_VALUES = CHART / "ci" / "scaled-int8-values.yaml"
GPU_VALUES = CHART / "ci" / "gpu-values.yaml"
VALUE_SETS = {"default": (), "scaled-int8": (str(SECOND_VALUES),), "gpu": (str(GPU_VALUES),)}
# The oldest Kubernetes release still maintained when the chart was written; the schemas ship with
# kubernetes-validate, nothing is downloaded.
KUBERNETES_VERSION = "1.31.0"
RELEASE = "rel"
Manifest = dict[str, Any]


def helm_env(home: Path) -> dict[str, str]:
    """helm's cache, config and data homes in ``home``: the user's repositories and plugins play no part."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HELM_")}
    env.update({f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")})
    return env


def helm(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as scratch:
        env = helm_env(home or Path(scratch))
        return subprocess.run([venv_tool("helm"), *args], env=env, capture_output=True, text=True, check=False)


def value_args(values_files: tuple[str, ...], sets: tuple[str, ...]) -> list[str]:
    return [arg for path in values_files for arg in ("-f", path)] + [arg for item in sets for arg in ("--set", item)]


@cache
def render_text(values_files: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    result = helm("template", RELEASE, str(CHART), *value_args(values_files, sets))
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass(frozen=True)
class Rendered:
    text: str
    objects: tuple[Manifest, ...]

    def all(self, kind: str) -> list[Manifest]:
        return [item for item in self.objects if item["kind"] == kind]

    def get(self, kind: str, name: str) -> Manifest:
        (found,) = [item for item in self.all(kind) if item["metadata"]["name"] == name]
        return found

    def deployment(self, component: str) -> Manifest:
        deployments = self.all("Deployment")
        (found,) = [item for item in deployments if labels_of(item)["app.kubernetes.io/component"] == component]
        return found

    def pod_specs(self) -> list[Manifest]:
        return [item["spec"]["template"]["spec"] for item in self.all("Deployment") + self.all("Job")]


def render(values_files: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> Rendered:
    text = render_text(values_files, sets)
    return Rendered(text, tuple(item for item in yaml.safe_load_all(text) if item))


def labels_of(item: Manifest) -> dict[str, str]:
    labels: dict[str, str] = item["metadata"]["labels"]
    return labels


def pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def container(deployment: Manifest, name: str) -> Manifest:
    (found,) = [item for item in deployment["spec"]["template"]["spec"]["containers"] if item["name"] == name]
    return found


def env_entries(container_spec: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in container_spec.get("env", [])}


def plain_env(container_spec: Manifest) -> dict[str, str]:
    return {name: entry["value"] for name, entry in env_entries(container_spec).items() if "value" in entry}


QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?")
FACTORS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def memory_bytes(quantity: str) -> int:
    match = QUANTITY.fullmatch(str(quantity))
    assert match, f"unreadable quantity {quantity!r}"
    return int(float(match[1]) * FACTORS[match[2]])
