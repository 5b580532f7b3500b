"""Background loops under one small supervisor: start, stop, log, and restart after an unexpected error.

Every long-running loop of a service (workers, pruners, sweepers, probes) runs through one
``BackgroundLoops``. A loop that raises something it did not expect is logged with its traceback
and started again after ``restart_delay_s``; a loop that returns has finished its job and is not
restarted; ``stop`` cancels every loop and waits until each has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

Loop = Callable[[], Coroutine[Any, Any, None]]
RESTART_DELAY_S = 1.0


class BackgroundLoops:
    """The background loops of one component, each an ``asyncio`` task named after its job."""

    def __init__(self, owner: str, restart_delay_s: float = RESTART_DELAY_S) -> None:
        self._log = structlog.get_logger(owner)
        self._restart_delay_s = restart_delay_s
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def names(self) -> list[str]:
        """The loops still running."""
        return [task.get_name() for task in self._tasks if not task.done()]

    def start(self, name: str, loop: Loop) -> None:
        self._tasks.append(asyncio.create_task(self._supervise(name, loop), name=name))

    async def stop(self) -> None:
        """Cancel every loop and wait for each to end (a loop's own cleanup runs to its end)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _supervise(self, name: str, loop: Loop) -> None:
        while True:
            try:
                await loop()
            except Exception:  # noqa: BLE001 - the point: any bug is logged and the loop restarts
                self._log.exception("background_loop_crashed", loop=name, restart_in_s=self._restart_delay_s)
                await asyncio.sleep(self._restart_delay_s)
            else:
                return
