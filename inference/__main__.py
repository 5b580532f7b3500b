"""``python -m inference``: read settings, configure logging, serve create_app() with uvicorn."""

from __future__ import annotations

import uvicorn

from inference.app import create_app
from inference.settings import InferenceSettings
from servicekit.log import configure_logging


def main() -> None:
    settings = InferenceSettings()
    configure_logging(
        settings.log_dir, service="inference", level=settings.log_level, max_bytes=settings.log_max_bytes,
        backup_count=settings.log_backup_count,
    )  # fmt: skip
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
