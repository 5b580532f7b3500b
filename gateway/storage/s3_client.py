"""The aiobotocore S3 client as the gateway uses it: path-style URLs, SigV4, short timeouts; the server's clock."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import ClientCreatorContext, get_session

from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


def client_config() -> AioConfig:
    return AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=3,
        read_timeout=30,
        retries={"max_attempts": 2, "mode": "standard"},  # one retry: callers have their own
        # Checksums only where S3 demands them: S3-compatible servers differ on the newer trailers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def create_client(settings: GatewaySettings, endpoint_url: str) -> ClientCreatorContext[S3Client]:
    """An async context manager yielding the client; no request is made until it is used."""
    secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    return get_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret,
        config=client_config(),
    )


def server_time(headers: dict[str, str]) -> datetime:
    """The S3 server's own time from a response's ``Date`` header (now, when it has none)."""
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return parsedate_to_datetime(headers["date"])
    return datetime.now(UTC)
