"""Where the served model comes from: an exported dir, or an export made on first use.

``INFERENCE_MODEL`` may be an exported dir (loaded as it is), or a hub id, a local Hugging Face
model dir or ``tiny-random``: those are looked up in ``INFERENCE_MODEL_DIR`` and, when missing,
exported once by running ``python -m inference.export`` as a child process, so that this
process never imports torch.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
from pathlib import Path

import anyio.to_thread
import structlog

from inference.model_files import is_exported_dir
from inference.settings import InferenceSettings

log = structlog.get_logger("inference.model_source")
EXPORT_ERROR_LINES = 20


class ModelUnavailableError(Exception):
    """No model can be served; the message is one sentence saying why and what to do."""


def cache_dir_for(settings: InferenceSettings) -> Path:
    """``<model_dir>/<model id with / as -->-<precision>``, e.g. ``Salesforce--blip-image-captioning-large-fp32``."""
    source = settings.model
    if Path(source).exists():
        source = Path(source).resolve().name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", source.replace("/", "--")).strip("-")
    return settings.model_dir / f"{slug}-{settings.precision}"


async def resolve_model_dir(settings: InferenceSettings) -> Path:
    """An exported dir for ``settings.model``, exporting it first when needed."""
    given = Path(settings.model)
    if await anyio.to_thread.run_sync(is_exported_dir, given):
        return given
    target = cache_dir_for(settings)
    if await anyio.to_thread.run_sync(is_exported_dir, target):
        log.info("model_cache_hit", model=settings.model, path=str(target))
        return target
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        raise ModelUnavailableError(
            f"'{settings.model}' is not exported yet and the export extra (torch, transformers) is not installed; "
            "export it with `python -m inference.export` where it is, or set INFERENCE_MODEL to an exported dir."
        )
    await _run_export(settings, target)
    return target


async def _run_export(settings: InferenceSettings, target: Path) -> None:
    command = [sys.executable, "-m", "inference.export", "--model", settings.model, "--output", str(target),
               "--precision", settings.precision]  # fmt: skip
    env = dict(os.environ)
    if settings.hf_token:
        env["HF_TOKEN"] = settings.hf_token
    log.info("model_export_started", model=settings.model, output=str(target))
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    tail: list[str] = []
    if process.stdout is None:  # pragma: no cover (stdout=PIPE always gives a stream)
        raise ModelUnavailableError("The export process has no output stream.")
    try:
        async with asyncio.timeout(settings.export_timeout_s):
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                tail = [*tail[-(EXPORT_ERROR_LINES - 1) :], line]
                log.info("model_export_output", line=line)
            code = await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()  # reap it: no zombie, no "subprocess still running" at garbage collection
        raise ModelUnavailableError(
            f"Exporting '{settings.model}' took longer than {settings.export_timeout_s:g} s."
        ) from None
    if code != 0:
        reason = next((line for line in reversed(tail) if line.startswith("export failed:")), tail[-1] if tail else "")
        raise ModelUnavailableError(reason.removeprefix("export failed: ") or f"The export exited with {code}.")
    log.info("model_export_finished", model=settings.model, output=str(target))
