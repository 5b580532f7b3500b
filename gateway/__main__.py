"""``python -m gateway``: read settings, configure logging, serve create_app() with uvicorn."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from servicekit.log import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging(
        settings.log_dir,
        service="gateway",
        level=settings.log_level,
        max_bytes=settings.log_max_bytes,
        backup_count=settings.log_backup_count,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
