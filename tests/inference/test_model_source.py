"""Where the served model comes from: an exported dir, the export cache, or an export run at start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from inference.app import create_app
from inference.model_files import is_exported_dir
from inference.model_source import ModelUnavailableError, cache_dir_for, resolve_model_dir
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter
from tests.inference.test_api import post_image, wait_until_settled
from tests.support import make_image_bytes

pytestmark = pytest.mark.slow


def settings_for(tmp_path: Path, model: str, **overrides: float) -> InferenceSettings:
    return InferenceSettings(model=model, model_dir=tmp_path / "cache", log_dir=tmp_path / "logs", **overrides)


async def test_an_exported_model_in_the_cache_is_used_without_exporting(
    exported_model: ModelExporter, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, "tiny-random", export_timeout_s=0.001)  # an export would time out
    shutil.copytree(exported_model("tiny-random"), cache_dir_for(settings))
    assert await resolve_model_dir(settings) == tmp_path / "cache" / "tiny-random-fp32"


def test_a_local_model_dir_is_cached_under_its_own_name(tmp_path: Path) -> None:
    source = tmp_path / "my blip"
    source.mkdir()
    assert cache_dir_for(settings_for(tmp_path, str(source))) == tmp_path / "cache" / "my-blip-fp32"
    hub = settings_for(tmp_path, "Salesforce/blip-image-captioning-large")
    assert cache_dir_for(hub).name == "Salesforce--blip-image-captioning-large-fp32"


async def test_an_export_over_its_time_limit_is_stopped_and_named(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"took longer than 0\.5 s"):
        await resolve_model_dir(settings_for(tmp_path, "tiny-random", export_timeout_s=0.5))


async def test_the_first_start_exports_tiny_random_into_the_cache_and_serves_it(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, "tiny-random"))
    async with AsyncTestClient(app=app) as client:
        readiness = await wait_until_settled(client, timeout_s=600)
        assert readiness["state"] == "ready", readiness
        assert (await post_image(client, make_image_bytes())).status_code == 200
    assert is_exported_dir(tmp_path / "cache" / "tiny-random-fp32")
