"""GatewaySettings: every tunable of the gateway, read once from the environment."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.captions import MAX_NEW_TOKENS_LIMIT

MIB = 1024 * 1024
INFERENCE_URL_SCHEMES = ("http://", "https://", "dns+http://", "dns+https://")


SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of the format, not a secret)
MIN_SECRET_BYTES = 16


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` (or bare base64) secret; ValueError when it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX).strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("GATEWAY_WEBHOOK_SECRET must be base64, optionally prefixed with 'whsec_'") from exc
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"GATEWAY_WEBHOOK_SECRET must decode to at least {MIN_SECRET_BYTES} bytes")
    return key


DNS_PREFIX = "dns+"


@dataclass(frozen=True)
class InferenceEntry:
    """One comma-separated entry: a base URL, or a name whose every address is a replica."""

    raw: str
    scheme: str
    host: str
    port: int
    discover: bool

    @property
    def url(self) -> str:
        return self.raw


def parse_entries(urls: list[str]) -> list[InferenceEntry]:
    """Parse entries; a ``dns+`` entry must name its port (there is no sensible default)."""
    entries: list[InferenceEntry] = []
    for raw in urls:
        discover = raw.startswith(DNS_PREFIX)
        parts = urlsplit(raw.removeprefix(DNS_PREFIX))
        if not parts.hostname:
            raise ValueError(f"The inference entry {raw!r} names no host.")
        if discover and parts.port is None:
            raise ValueError(f"The inference entry {raw!r} needs a port, as in dns+http://inference:3000.")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        entries.append(InferenceEntry(raw, parts.scheme, parts.hostname, port, discover))
    return entries


class GatewaySettings(BaseSettings):
    """Typed, frozen settings; variables are ``GATEWAY_<NAME>`` plus ``DATABASE_URL``."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    log_dir: Path = Path("./logs")
    log_level: str = "INFO"
    log_max_bytes: int = Field(default=10 * MIB, ge=1024)
    log_backup_count: int = Field(default=5, ge=0)
    inference_url: str = "http://127.0.0.1:3000"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GATEWAY_DATABASE_URL")
    )
    max_upload_bytes: int = Field(default=25 * MIB, ge=1)
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    workers: int = Field(default=2, ge=0, description="Concurrent images in flight; 0 pauses processing.")
    cpu_threads: int = Field(default=2, ge=1, description="Threads for Pillow work.")
    api_key: str | None = None
    small_thumbnail_px: int = Field(default=160, ge=16)
    medium_thumbnail_px: int = Field(default=640, ge=16)
    thumbnail_quality: int = Field(default=85, ge=1, le=95)
    inference_timeout_s: float = Field(default=60.0, gt=0)
    inference_connect_timeout_s: float = Field(default=3.0, gt=0)
    inference_attempts: int = Field(default=4, ge=1, description="Tries per caption, first one included.")
    inference_backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles each try.")
    inference_backoff_max_s: float = Field(default=10.0, ge=0)
    inference_probe_interval_s: float = Field(default=5.0, gt=0)
    inference_resolve_interval_s: float = Field(
        default=5.0, gt=0, description="How often `dns+http://` entries are resolved again."
    )
    inference_eject_s: float = Field(
        default=1.0, gt=0, description="First ejection of a failing replica; doubles per ejection in a row."
    )
    inference_eject_max_s: float = Field(default=30.0, gt=0, description="Longest ejection of a replica.")
    poll_interval_s: float = Field(default=2.0, gt=0)
    lease_s: float = Field(default=30.0, gt=0, description="A claim not renewed for this long is taken over.")
    caption_max_new_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS_LIMIT)
    webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_secret: SecretStr | None = None
    webhook_max_age_h: float = Field(default=24.0, gt=0, description="Retry a delivery for this long, then drop it.")
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_backoff_s: float = Field(default=1.0, gt=0, description="First retry delay; doubles, with jitter.")
    webhook_backoff_max_s: float = Field(default=600.0, gt=0)
    webhook_poll_interval_s: float = Field(default=1.0, gt=0)
    webhook_concurrency: int = Field(default=4, ge=1, description="Deliveries sent at once by one gateway.")
    body_idle_timeout_s: float = Field(
        default=20.0, gt=0, description="An upload body that sends nothing for this long is answered 408."
    )
    idempotency_ttl_h: float = Field(default=24.0, gt=0, description="How long an Idempotency-Key is remembered.")

    @field_validator("inference_url")
    @classmethod
    def _known_inference_entries(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if not entries:
            raise ValueError("GATEWAY_INFERENCE_URL needs at least one URL")
        for entry in entries:
            if not entry.startswith(INFERENCE_URL_SCHEMES):
                raise ValueError(f"{entry!r} does not start with one of {', '.join(INFERENCE_URL_SCHEMES)}")
        parse_entries(entries)
        return value

    @property
    def inference_urls(self) -> list[str]:
        """The entries of ``GATEWAY_INFERENCE_URL``: base URLs and ``dns+http://NAME:PORT`` names."""
        return [entry.strip().rstrip("/") for entry in self.inference_url.split(",") if entry.strip()]

    @property
    def inference_entries(self) -> list[InferenceEntry]:
        """``inference_urls`` parsed (the validator has checked that they parse)."""
        return parse_entries(self.inference_urls)

    @property
    def webhook_key(self) -> bytes:
        """The HMAC key of ``GATEWAY_WEBHOOK_SECRET``; empty when none is set."""
        return decode_secret(self.webhook_secret.get_secret_value()) if self.webhook_secret else b""

    # Blob storage (gateway/storage/): the data dir, or an S3-compatible bucket.
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    storage_check_interval_s: float = Field(default=10.0, gt=0, description="Object store probe and sweep period.")
    storage_orphan_grace_s: float = Field(default=30.0, ge=0, description="Age before an unclaimed object is swept.")
    caption_max_cycles: int = Field(
        default=5, ge=1, description="Caption cycles ending unavailable while inference is ready, then failed."
    )
    recaption_concurrency: int = Field(
        default=1, ge=0, description="Re-captions in flight at once per gateway; 0: this gateway makes none."
    )
    recaption_per_s: float = Field(
        default=2.0, ge=0, description="Most re-captions a gateway starts per second; 0: no limit but concurrency."
    )
    events_retention_h: float = Field(default=24.0, gt=0, description="Events older than this are pruned.")
    events_heartbeat_s: float = Field(default=15.0, gt=0, description="SSE heartbeat comment interval.")
    events_poll_interval_s: float = Field(default=0.5, gt=0, description="SSE poll (PostgreSQL: fallback).")
    events_prune_interval_s: float = Field(default=300.0, gt=0, description="How often old events are pruned.")

    @field_validator("log_level")
    @classmethod
    def _upper_log_level(cls, value: str) -> str:
        return value.upper()

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split_webhook_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(url.strip() for url in value.split(",") if url.strip())
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _check_webhook_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            scheme, _, rest = url.partition("://")
            if scheme not in ("http", "https") or not rest.split("/", 1)[0]:
                raise ValueError(f"GATEWAY_WEBHOOK_URLS: {url[:200]!r} is not an http(s) URL")
        return tuple(dict.fromkeys(urls))

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> GatewaySettings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("GATEWAY_WEBHOOK_URLS needs GATEWAY_WEBHOOK_SECRET to sign the deliveries")
        if self.webhook_secret is not None:
            decode_secret(self.webhook_secret.get_secret_value())
        return self

    @field_validator("s3_prefix")
    @classmethod
    def _normalized_prefix(cls, value: str) -> str:
        """``a/b`` -> ``a/b/``; no empty, ``.`` or ``..`` segments (S3 servers refuse such keys)."""
        value = value.strip("/")
        if not value:
            return ""
        if any(segment in ("", ".", "..") for segment in value.split("/")):
            raise ValueError("GATEWAY_S3_PREFIX must be path segments like 'photos/prod', without '.', '..' or '//'")
        return value + "/"

    @model_validator(mode="after")
    def _s3_settings_complete(self) -> Self:
        if self.storage_backend != "s3":
            return self
        required = {
            "GATEWAY_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "GATEWAY_S3_BUCKET": self.s3_bucket,
            "GATEWAY_S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "GATEWAY_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
        }
        missing = [name for name, value in required.items() if not value]
        if missing:
            raise ValueError(f"GATEWAY_STORAGE_BACKEND=s3 needs {', '.join(missing)} to be set")
        return self  # a malformed endpoint or bucket name is a readiness problem (S3BlobStore), not a crash

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"
