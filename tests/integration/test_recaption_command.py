"""``python -m gateway recaption``: queue from the command line, then follow the progress until done."""

from __future__ import annotations

import asyncio
import io
import time

from gateway.persistence.aggregates import RecaptionCounts
from gateway.recaption_cli import progress_line, recaption
from tests.conftest import SettingsFactory
from tests.in_process import running_gateway, services_of, upload_to
from tests.support import FakeInference


async def test_the_command_queues_every_caption_and_follows_until_the_gateway_made_them(
    make_settings: SettingsFactory, fake_inference: FakeInference
) -> None:
    settings = make_settings(recaption_per_s=0)
    async with running_gateway(settings, fake_inference) as app:
        for _ in range(3):
            await upload_to(app)
        deadline = time.monotonic() + 20
        while (await services_of(app).catalog.count_by_status())["completed"] < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        out = io.StringIO()

        status = await recaption(settings, every=True, keep_following=True, out=out)

    lines = out.getvalue().splitlines()
    assert status == 0
    assert lines[0] == "recaption: queued 3 (every caption)"
    assert lines[-2] == f"recaption [{'#' * 30}] 3/3  done 3  failed 0"
    assert lines[-1] == "recaption: finished: done 3, failed 0"


async def test_without_a_replica_to_ask_the_command_queues_nothing_and_exits_2(make_settings: SettingsFactory) -> None:
    settings = make_settings(inference_url="http://127.0.0.1:9", inference_connect_timeout_s=0.5)
    out = io.StringIO()

    status = await recaption(settings, every=False, keep_following=True, out=out)

    assert status == 2
    assert out.getvalue() == ""


def test_the_progress_bar_counts_what_left_the_queue() -> None:
    assert progress_line(RecaptionCounts(queued=30, done=9, failed=1), 40) == (
        f"recaption [{'#' * 7}{'-' * 23}] 10/40  done 9  failed 1"
    )
    assert progress_line(RecaptionCounts(queued=0, done=0, failed=0), 0).endswith("0/0  done 0  failed 0")
