"""GatewaySettings: every tunable of the gateway, read once from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


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
    caption_max_cycles: int = Field(
        default=5, ge=1, description="Caption cycles ending unavailable while inference is ready, then failed."
    )
    events_retention_h: float = Field(default=24.0, gt=0, description="Events older than this are pruned.")
    events_heartbeat_s: float = Field(default=15.0, gt=0, description="SSE heartbeat comment interval.")
    events_poll_interval_s: float = Field(default=0.5, gt=0, description="SSE poll (PostgreSQL: fallback).")
    events_prune_interval_s: float = Field(default=300.0, gt=0, description="How often old events are pruned.")

    @field_validator("log_level")
    @classmethod
    def _upper_log_level(cls, value: str) -> str:
        return value.upper()

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"
