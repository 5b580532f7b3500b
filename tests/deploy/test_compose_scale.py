"""The scale-out override: shared PostgreSQL and S3 whose credentials agree, and a one-box default left alone."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.compose_model import COMPOSE_FILE, environment_of, host_path_of, interpolate, load, merged_scale

CUSTOM = {
    "POSTGRES_USER": "alice",
    "POSTGRES_PASSWORD": "p4ss-word",
    "POSTGRES_DB": "photos",
    "S3_ACCESS_KEY_ID": "custom-access-key",
    "S3_SECRET_ACCESS_KEY": "custom-secret-key",
}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = merged_scale()["services"]
    return merged


def gateways(services: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, service in services.items() if "GATEWAY_PORT" in environment_of(service)]


def test_every_gateway_lists_every_replica_and_keeps_them_fed(services: dict[str, dict[str, Any]]) -> None:
    replicas = {name for name, service in services.items() if "INFERENCE_PORT" in environment_of(service)}
    in_flight = 0
    for name in gateways(services):
        environment = environment_of(services[name])
        listed = {urlsplit(url.strip()).hostname for url in environment["GATEWAY_INFERENCE_URL"].split(",")}
        assert listed == replicas, name
        in_flight += int(environment.get("GATEWAY_WORKERS", "2"))
    assert len(replicas) >= 2 and in_flight >= 2 * len(replicas)


@pytest.mark.parametrize("env", [{}, CUSTOM], ids=["defaults", "from-env"])
def test_every_gateway_logs_in_to_the_postgres_service_with_its_own_credentials(
    services: dict[str, dict[str, Any]], env: dict[str, str]
) -> None:
    postgres = environment_of(services["postgres"], env)
    for name in gateways(services):
        url = urlsplit(environment_of(services[name], env)["DATABASE_URL"])
        assert url.scheme == "postgresql", name
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert (url.username, url.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
        assert url.path.lstrip("/") == postgres["POSTGRES_DB"]


@pytest.mark.parametrize("env", [{}, CUSTOM], ids=["defaults", "from-env"])
def test_every_gateway_stores_blobs_in_the_s3_service_with_a_key_it_accepts(
    services: dict[str, dict[str, Any]], env: dict[str, str]
) -> None:
    command = [interpolate(str(part), env) for part in services["s3"]["command"]]
    assert command[:2] == ["serve", "s3"]
    listen_port = command[command.index("--addr") + 1].rsplit(":", 1)[1]
    accepted_key = command[command.index("--auth-key") + 1]
    for name in gateways(services):
        gateway = environment_of(services[name], env)
        assert gateway["GATEWAY_STORAGE_BACKEND"] == "s3", name
        endpoint = urlsplit(gateway["GATEWAY_S3_ENDPOINT_URL"])
        assert (endpoint.hostname, str(endpoint.port)) == ("s3", listen_port)
        assert f"{gateway['GATEWAY_S3_ACCESS_KEY_ID']},{gateway['GATEWAY_S3_SECRET_ACCESS_KEY']}" == accepted_key
        # rclone refuses very short keys
        assert min(len(part) for part in accepted_key.split(",")) >= 8


def test_gateways_share_the_bucket_and_database_but_no_disk(services: dict[str, dict[str, Any]]) -> None:
    first, second = (environment_of(services[name]) for name in gateways(services))
    for key in ("DATABASE_URL", "GATEWAY_S3_ENDPOINT_URL", "GATEWAY_S3_BUCKET", "GATEWAY_S3_PREFIX"):
        assert first[key] == second[key], key
    data_dirs = {
        host_path_of(services[name], environment_of(services[name])["GATEWAY_DATA_DIR"]) for name in gateways(services)
    }
    assert len(data_dirs) == 2, "each gateway spools uploads on its own volume; blobs are in the bucket"


def test_the_one_box_default_needs_no_database_server_and_no_bucket() -> None:
    base = load(COMPOSE_FILE)["services"]
    gateway = environment_of(base["gateway"])
    assert gateway["DATABASE_URL"].startswith("sqlite:")
    assert gateway.get("GATEWAY_STORAGE_BACKEND", "local") == "local"
    assert not {"postgres", "s3"} & set(base)
    assert "," not in gateway["GATEWAY_INFERENCE_URL"]
