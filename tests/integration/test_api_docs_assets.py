"""Both services' API docs pages reference only their own packaged assets, and serve every one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from inference.app import create_app as create_inference
from inference.settings import InferenceSettings
from servicekit.apidocs import ASSETS_DIR
from tests.inference.fakes import SlowFakeCaptioner

ASSET_REFERENCE = re.compile(r"""(?:src|href)=['"]([^'"]+)['"]""")
DOCS_PAGES = ["/docs", "/docs/redoc"]


def gateway_app(tmp_path: Path) -> Litestar:
    return create_gateway(
        GatewaySettings(
            data_dir=tmp_path / "data", log_dir=tmp_path / "logs", workers=0, inference_url="http://127.0.0.1:9"
        )
    )


def inference_app(tmp_path: Path) -> Litestar:
    settings = InferenceSettings(model_dir=tmp_path / "models", log_dir=tmp_path / "logs", threads=1)
    return create_inference(settings, captioner=SlowFakeCaptioner())


@pytest.fixture(params=[gateway_app, inference_app], ids=["gateway", "inference"])
async def docs_client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=request.param(tmp_path)) as client:
        yield client


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_docs_page_references_only_assets_the_service_serves(
    docs_client: AsyncTestClient[Any], page: str
) -> None:
    response = await docs_client.get(page)
    assert response.status_code == 200
    references = ASSET_REFERENCE.findall(response.text)
    assert references, response.text[:500]
    assert "//" not in "".join(references), references  # nothing from another host, not even protocol-relative
    assert "googleapis" not in response.text
    assert '<head><meta http-equiv="Content-Security-Policy" content="default-src \'self\';' in response.text
    for reference in references:
        asset = await docs_client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
        assert "max-age" in asset.headers["cache-control"]


async def test_docs_assets_are_the_vendored_files_with_their_licences(docs_client: AsyncTestClient[Any]) -> None:
    for name in ("swagger-ui/swagger-ui-bundle.js", "redoc/redoc.standalone.js"):
        response = await docs_client.get(f"/docs/assets/{name}")
        assert response.content == (ASSETS_DIR / name).read_bytes()
        assert "javascript" in response.headers["content-type"]
    for licence in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert (ASSETS_DIR / licence).stat().st_size > 0


async def test_unknown_docs_asset_is_404(docs_client: AsyncTestClient[Any]) -> None:
    assert (await docs_client.get("/docs/assets/nothing-here.js")).status_code == 404
