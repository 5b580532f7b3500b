"""GatewaySettings: every tunable of the gateway, read once from the environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024
S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


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
    poll_interval_s: float = Field(default=2.0, gt=0)
    lease_s: float = Field(default=30.0, gt=0, description="A claim not renewed for this long is taken over.")
    caption_max_new_tokens: int | None = Field(default=None, ge=1, le=128)
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

    @field_validator("log_level")
    @classmethod
    def _upper_log_level(cls, value: str) -> str:
        return value.upper()

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

    @field_validator("s3_bucket")
    @classmethod
    def _valid_bucket_name(cls, value: str | None) -> str | None:
        if value is not None and not S3_BUCKET_NAME.fullmatch(value):
            raise ValueError("GATEWAY_S3_BUCKET must be 3-63 lowercase letters, digits, '.' or '-'")
        return value

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
        if not (self.s3_endpoint_url or "").startswith(("http://", "https://")):
            raise ValueError("GATEWAY_S3_ENDPOINT_URL must be an http:// or https:// URL")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"
