"""Blocking work in a worker thread that a cancelled caller still waits for.

``anyio.to_thread.run_sync`` shields its thread from anyio cancel scopes, but a plain asyncio
``task.cancel()`` (how every background loop here is stopped) ends the await at once while the
thread runs on. A stop could then give claims back before a claim in flight commits, or dispose
the engine while a thread still holds one of its connections. ``run_to_completion`` lets the
cancellation through only once the thread is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio.to_thread

T = TypeVar("T")
Args = TypeVarTuple("Args")


async def run_to_completion(
    func: Callable[[Unpack[Args]], T], *args: *Args, limiter: anyio.CapacityLimiter | None = None
) -> T:
    """``func(*args)`` in a worker thread; a cancellation waits for the thread, then is raised."""
    call = asyncio.ensure_future(anyio.to_thread.run_sync(func, *args, limiter=limiter))
    cancelled: asyncio.CancelledError | None = None
    while not call.done():
        try:
            await asyncio.wait([call])  # unlike await call, a cancelled wait leaves the call running
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    return call.result()
