"""Structured logging for both services: console for people, rotating JSON lines under the log dir for machines.

Configured once at start (``python -m gateway`` / ``python -m inference``), nothing at import time.
Litestar's ``StructlogPlugin`` was not taken: it brings its own processors and request logging and
has no size-rotated JSON file with a read-only fallback; this setup is shorter than configuring it.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
from pathlib import Path

import structlog


def configure_logging(log_dir: Path, *, service: str, level: str = "INFO", max_bytes: int, backup_count: int) -> Path:
    """Route structlog and stdlib logging to the console and ``<log_dir>/<service>.jsonl`` (size-rotated).

    A log dir that cannot be written keeps the console and logs ``log_file_unwritable``.
    """
    with contextlib.suppress(OSError):
        log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{service}.jsonl"
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
            ],
        )
    )
    try:
        json_file: logging.Handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
    except OSError as exc:  # a read-only log dir must not stop the service: keep the console
        json_file = logging.NullHandler()
        unwritable = f"{log_file}: {exc}"
    else:
        unwritable = ""
    json_file.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.dict_tracebacks,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.addHandler(console)
    root.addHandler(json_file)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if unwritable:
        structlog.get_logger("servicekit.log").warning("log_file_unwritable", detail=unwritable)
    return log_file
