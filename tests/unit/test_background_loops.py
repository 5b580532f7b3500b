"""Background loops restart after an unexpected error, end when their job is done, and stop together."""

from __future__ import annotations

import asyncio

from servicekit.background import BackgroundLoops
from tests.support import eventually


async def test_a_loop_that_crashes_is_started_again() -> None:
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("a bug")
        await asyncio.Event().wait()  # the third run keeps going

    loops = BackgroundLoops("test", restart_delay_s=0.01)
    loops.start("flaky", flaky)
    await eventually(lambda: len(runs) == 3)
    assert loops.names == ["flaky"]
    await loops.stop()
    assert loops.names == []


async def test_a_loop_that_returns_is_not_started_again() -> None:
    runs: list[str] = []

    async def once() -> None:
        runs.append("ran")

    loops = BackgroundLoops("test", restart_delay_s=0.01)
    loops.start("once", once)
    await eventually(lambda: not loops.names)
    await asyncio.sleep(0.05)  # several restart delays: nothing runs it again
    assert runs == ["ran"]
    await loops.stop()


async def test_stop_waits_for_each_loop_to_finish_its_cleanup() -> None:
    cleaned: list[str] = []

    async def with_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.01)  # cleanup that itself awaits
            cleaned.append("done")

    loops = BackgroundLoops("test")
    loops.start("a", with_cleanup)
    loops.start("b", with_cleanup)
    await asyncio.sleep(0)
    await loops.stop()
    assert cleaned == ["done", "done"]
