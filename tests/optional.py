"""Optional tools and packages: a test without them skips with a message, and fails when CI is set."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def skip_or_fail_in_ci(message: str) -> NoReturn:
    """Skip the test saying what is missing; in CI (``CI`` set) the same message fails it."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} It is required when CI is set.")
    pytest.skip(message)


def import_or_skip(name: str, install_hint: str) -> ModuleType:
    """``pytest.importorskip`` that fails in CI, for module-level imports of optional packages."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{name} is not installed ({install_hint}).", allow_module_level=True)
