"""A request the model has no positions for is a 422 naming the limit, never a 500 (tiny-random: 64 positions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from contracts.captions import MAX_NEW_TOKENS_LIMIT, MAX_PROMPT_CHARS
from contracts.model_info import ModelInfo
from inference.app import create_app
from inference.captioner import BlipCaptioner, new_token_budget
from inference.errors import BeyondModelLimitError
from inference.generate import greedy_decode
from inference.preprocess import pixel_values
from tests.conftest import ModelExporter
from tests.inference.test_api import post_image, settings_for, wait_until_settled
from tests.support import make_image_bytes, problem_of

TINY_POSITIONS = 64
FORTY_WORDS = " ".join(["a photo of a dog"] * 8)


@pytest.fixture
async def tiny_client(exported_model: ModelExporter, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings_for(tmp_path, model=str(exported_model("tiny-random"))))
    async with AsyncTestClient(app=app) as client:
        assert (await wait_until_settled(client))["status"] == "ready"
        yield client


async def test_model_info_reports_the_max_new_tokens_limit(tiny_client: AsyncTestClient[Any]) -> None:
    info = ModelInfo.model_validate((await tiny_client.get("/v1/model")).json())
    assert info.max_new_tokens_limit == TINY_POSITIONS


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"max_new_tokens": 100}, 422),
        ({"max_new_tokens": 128}, 422),
        ({"max_new_tokens": 65}, 422),
        ({"max_new_tokens": 64}, 200),
        ({"max_new_tokens": 1}, 200),
        ({"prompt": FORTY_WORDS, "max_new_tokens": 30}, 422),
        ({"prompt": FORTY_WORDS, "max_new_tokens": 24}, 200),
        ({"prompt": FORTY_WORDS}, 200),
        ({"prompt": "a " * (MAX_PROMPT_CHARS // 2)}, 422),
        ({"prompt": "x" * MAX_PROMPT_CHARS, "max_new_tokens": 1}, 200),
        ({"prompt": ""}, 200),
        ({"prompt": "", "max_new_tokens": 128}, 422),
        ({"prompt": "   ", "max_new_tokens": 64}, 200),
        ({"prompt": "\U0001f642 \u00e9t\u00e9 \u0000", "max_new_tokens": 8}, 200),
    ],
    ids=[
        "100-tokens", "128-tokens", "one-past-the-limit", "at-the-limit", "one-token", "40-words-and-30-tokens",
        "40-words-and-what-is-left", "40-words-default-tokens", "longest-prompt-of-words", "longest-prompt-one-word",
        "empty-prompt", "empty-prompt-128-tokens", "blank-prompt-at-the-limit", "emoji-accents-nul",
    ],
)  # fmt: skip
async def test_valid_requests_are_served_or_refused_with_422_never_500(
    tiny_client: AsyncTestClient[Any], params: dict[str, Any], status: int
) -> None:
    response = await post_image(tiny_client, make_image_bytes((48, 32)), **params)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["tokens"] <= params.get("max_new_tokens", TINY_POSITIONS)
        return
    problem = problem_of(response)
    assert problem["type"] == "urn:image-pipeline:problem:beyond-model-limit"
    assert problem["max_new_tokens_limit"] == TINY_POSITIONS
    assert str(TINY_POSITIONS) in problem["detail"]


async def test_the_refusal_says_how_much_room_the_prompt_leaves(tiny_client: AsyncTestClient[Any]) -> None:
    response = await post_image(tiny_client, make_image_bytes(), prompt=FORTY_WORDS, max_new_tokens=30)
    problem = problem_of(response)
    assert problem["prompt_tokens"] == 40
    assert problem["detail"] == (
        "max_new_tokens=30 is beyond this model: the prompt takes 40 of its 64 positions, "
        "leaving room for 24 new tokens."
    )


def test_the_limit_is_what_the_exported_decoder_really_holds(exported_model: ModelExporter) -> None:
    # Forced to the full length (eos forbidden), the limit decodes and one token more fails in onnxruntime.
    captioner = BlipCaptioner.load(exported_model("tiny-random"), threads=1)
    assert captioner.generation.max_positions == TINY_POSITIONS
    pixels = pixel_values([Image.new("RGB", (32, 32), (90, 140, 200))], captioner.preprocess)
    cross = captioner.vision.encode(pixels)
    prompt = captioner.tokenizer.encode_prompt("a photo of a dog")
    room = captioner.token_budget(prompt, TINY_POSITIONS - len(prompt))
    [generated] = greedy_decode(captioner.decoder, cross, prompt, captioner.generation, room, min_new_tokens=room)
    assert generated.new_tokens == room == TINY_POSITIONS - len(prompt)
    with pytest.raises(Exception, match="position_embeddings"):
        greedy_decode(captioner.decoder, cross, prompt, captioner.generation, room + 1, min_new_tokens=room + 1)
    with pytest.raises(BeyondModelLimitError):
        captioner.token_budget(prompt, room + 1)


@pytest.mark.parametrize(
    ("max_positions", "prompt_tokens", "asked", "default", "budget"),
    [
        (64, 0, None, 19, 19),
        (64, 0, 64, 19, 64),
        (64, 60, None, 19, 4),  # a default shrinks to fit
        (64, 63, 1, 19, 1),
        (512, 0, 128, 19, 128),
        (None, 500, 128, 19, 128),  # an export without max_positions is not checked
        (None, 0, None, 19, 19),
    ],
)
def test_new_token_budget_table(
    max_positions: int | None, prompt_tokens: int, asked: int | None, default: int, budget: int
) -> None:
    assert new_token_budget(max_positions, prompt_tokens, asked, default) == budget


@pytest.mark.parametrize(("prompt_tokens", "asked"), [(0, 65), (64, None), (64, 1), (10, 55), (100, None)])
def test_new_token_budget_refuses_what_does_not_fit(prompt_tokens: int, asked: int | None) -> None:
    with pytest.raises(BeyondModelLimitError) as refused:
        new_token_budget(64, prompt_tokens, asked, 19)
    assert refused.value.extensions == {"max_new_tokens_limit": 64, "prompt_tokens": prompt_tokens}
    assert refused.value.status == 422


def test_blip_large_positions_report_the_api_bound(exported_model: ModelExporter) -> None:
    # BLIP-large has 512 positions: 512 new tokens fit without a prompt, the API allows 128 of them.
    captioner = BlipCaptioner.load(exported_model("tiny-random"), threads=1)
    captioner.generation = captioner.generation.model_copy(update={"max_positions": 512})
    assert captioner.describe().max_new_tokens_limit == MAX_NEW_TOKENS_LIMIT


async def test_the_served_schema_bounds_max_new_tokens_by_the_loaded_model(tiny_client: AsyncTestClient[Any]) -> None:
    """Schemathesis sent max_new_tokens=127, valid by a schema that said 128, to a model that serves 64."""
    schema = (await tiny_client.get("/docs/openapi.json")).json()
    declared = schema["paths"]["/v1/captions"]["post"]["parameters"]
    parameters = {parameter["name"]: parameter["schema"] for parameter in declared}
    assert parameters["max_new_tokens"]["maximum"] == TINY_POSITIONS
    assert parameters["prompt"]["maxLength"] == MAX_PROMPT_CHARS
    served = await post_image(tiny_client, make_image_bytes(), max_new_tokens=parameters["max_new_tokens"]["maximum"])
    assert served.status_code == 200, served.text
