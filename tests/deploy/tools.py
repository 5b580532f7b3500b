"""Paths and the dev tools (pip-installed binaries) the deployment checks run."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def venv_tool(name: str) -> Path:
    tool = VENV_BIN / name
    assert tool.exists(), f"{tool} is missing: install the dev extra (pip install -e '.[dev]')"
    return tool


@cache
def app_routes(service: str) -> frozenset[str]:
    """The paths the real app serves (``gateway`` or ``inference``), read from its Litestar routes."""
    if service == "gateway":
        from gateway.app import create_app as create_gateway

        return frozenset(route.path for route in create_gateway().routes)
    from inference.app import create_app as create_inference

    return frozenset(route.path for route in create_inference().routes)
