"""Settings come from the environment with documented names and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.persistence.db import normalize_database_url
from gateway.settings import GatewaySettings


def test_defaults_match_the_readme(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "GATEWAY_PORT", "GATEWAY_WORKERS", "GATEWAY_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = GatewaySettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.data_dir == Path("./data")
    assert settings.log_dir == Path("./logs")
    assert settings.inference_url == "http://127.0.0.1:3000"
    assert settings.max_upload_bytes == 25 * 1024 * 1024
    assert settings.max_image_pixels == 50_000_000
    assert settings.workers == 2
    assert settings.api_key is None
    assert settings.resolved_database_url.endswith("data/gateway.sqlite3")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    monkeypatch.setenv("GATEWAY_WORKERS", "0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    settings = GatewaySettings()
    assert settings.port == 9000
    assert settings.workers == 0
    assert settings.resolved_database_url == "postgresql://u@h/db"


def test_settings_are_frozen_and_validated() -> None:
    settings = GatewaySettings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        GatewaySettings(workers=-1)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_use_psycopg3(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected
