"""What the browser tests need: the playwright package and Debian's chromium. Skip without, fail in CI."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))


def require_browser() -> None:
    """Call at the top of a browser test module, before importing playwright."""
    if importlib.util.find_spec("playwright") is None:
        message = "The playwright package is not installed (pip install -e '.[dev]')."
    elif not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`."
    else:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message} It is required when CI is set.", pytrace=False)
    pytest.skip(message, allow_module_level=True)
