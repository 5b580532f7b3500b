"""``python -m gateway``: read settings, configure logging, serve create_app() with uvicorn.

``python -m gateway recaption [--all] [--no-follow]`` queues captions for re-captioning instead
(``gateway.recaption_cli``).
"""

from __future__ import annotations

import sys

import uvicorn

from gateway import recaption_cli
from gateway.app import create_app
from gateway.settings import GatewaySettings
from servicekit.log import configure_logging


def main() -> None:
    if sys.argv[1:2] == ["recaption"]:
        sys.exit(recaption_cli.main(sys.argv[2:]))
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
