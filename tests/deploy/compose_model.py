"""The compose files as Docker Compose reads them: interpolation, and the merge of an override file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.tools import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
SCALE_FILE = ROOT / "docker-compose.scale.yml"
ENV_EXAMPLE = ROOT / ".env.example"

Service = dict[str, Any]
INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}")
# Compose's merge: these sequences are concatenated (unique), `volumes` merge by target, the rest replace.
APPENDED = {"ports", "expose", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop", "env_file"}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation for the forms these files use: ``$$``, ``${NAME}`` and ``${NAME:-default}``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match["name"]) or match["default"] or ""

    return INTERPOLATION.sub(replace, value)


def environment_of(service: Service, env: dict[str, str] | None = None) -> dict[str, str]:
    return {key: interpolate(str(value), env or {}) for key, value in service.get("environment", {}).items()}


def _mount_target(mount: str) -> str:
    return str(mount).split(":")[1]


def merge(base: Any, override: Any, key: str = "") -> Any:
    """``docker compose -f base -f override config``'s merge, for the keys these files use."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if key in APPENDED:
            return base + [item for item in override if item not in base]
        if key == "volumes":
            targets = {_mount_target(item) for item in override}
            return [item for item in base if _mount_target(item) not in targets] + override
    return override


def merged_scale() -> dict[str, Any]:
    """docker-compose.yml with docker-compose.scale.yml laid over it (YAML anchors and merge keys resolved)."""
    document: dict[str, Any] = merge(load(COMPOSE_FILE), load(SCALE_FILE))
    return document


def memory_bytes(size: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", str(size).lower())
    assert match, f"unreadable memory size {size!r}"
    return int(float(match[1]) * 1024 ** "bkmg".index(match[2] or "b"))


def host_path_of(service: Service, container_path: str) -> str | None:
    """Where ``container_path`` lives outside the container: ``volume:sub/path``, ``./dir/sub``, or None."""
    best: tuple[str, str] | None = None
    for mount in service.get("volumes", []):
        source, target = str(mount).split(":")[:2]
        inside = container_path == target or container_path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) > len(best[1])):
            best = (source, target)
    if best is None:
        return None
    rest = container_path[len(best[1]) :].strip("/")
    return f"{best[0]}/{rest}".rstrip("/") if rest else best[0]
