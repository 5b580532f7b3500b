"""Storage settings: exact variable names, validation of the S3 backend, and the failure sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from gateway.storage import LocalBlobStore, S3BlobStore, build_blob_store
from gateway.storage.s3_errors import S3Target, describe_create_failure, describe_failure

S3_ENV = {
    "GATEWAY_STORAGE_BACKEND": "s3",
    "GATEWAY_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "GATEWAY_S3_BUCKET": "photos",
    "GATEWAY_S3_ACCESS_KEY_ID": "key-id-123",
    "GATEWAY_S3_SECRET_ACCESS_KEY": "secret-456789",
}
TARGET = S3Target(endpoint_url="http://s3.test:9000", bucket="photos")


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "ListObjectsV2")


def test_storage_defaults_to_the_local_data_dir(tmp_path: Path) -> None:
    settings = GatewaySettings(data_dir=tmp_path)
    assert settings.storage_backend == "local"
    assert settings.s3_region == "us-east-1"
    assert settings.s3_prefix == ""
    assert isinstance(build_blob_store(settings), LocalBlobStore)


def test_s3_settings_are_read_from_their_exact_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**S3_ENV, "GATEWAY_S3_REGION": "eu-west-3", "GATEWAY_S3_PREFIX": "prod/"}.items():
        monkeypatch.setenv(name, value)
    settings = GatewaySettings()
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.s3_bucket == "photos"
    assert settings.s3_access_key_id == "key-id-123"
    assert settings.s3_secret_access_key is not None
    assert settings.s3_secret_access_key.get_secret_value() == "secret-456789"
    assert "secret-456789" not in repr(settings)
    assert (settings.s3_region, settings.s3_prefix) == ("eu-west-3", "prod/")
    assert isinstance(build_blob_store(settings), S3BlobStore)


@pytest.mark.parametrize("missing", sorted(name for name in S3_ENV if name != "GATEWAY_STORAGE_BACKEND"))
def test_s3_backend_without_a_required_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    for name, value in S3_ENV.items():
        if name != missing:
            monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=f"GATEWAY_STORAGE_BACKEND=s3 needs {missing} to be set"):
        GatewaySettings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s3_prefix": "a/../b"}, "GATEWAY_S3_PREFIX must be path segments"),
        ({"s3_prefix": "a//b"}, "GATEWAY_S3_PREFIX must be path segments"),
        ({"storage_backend": "ftp"}, "storage_backend"),
    ],
)
def test_invalid_storage_settings_are_refused(overrides: dict[str, str], message: str) -> None:
    values = {
        "storage_backend": "s3",
        "s3_endpoint_url": "http://127.0.0.1:9000",
        "s3_bucket": "photos",
        "s3_access_key_id": "key-id-123",
        "s3_secret_access_key": "secret-456789",
    }
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(**(values | overrides))


@pytest.mark.parametrize(("raw", "normalized"), [("", ""), ("/", ""), ("a", "a/"), ("/a/b/", "a/b/")])
def test_s3_prefix_is_normalized_to_end_with_one_slash(raw: str, normalized: str) -> None:
    assert GatewaySettings(s3_prefix=raw).s3_prefix == normalized


ENDPOINT = "The S3 endpoint http://s3.test:9000"


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (EndpointConnectionError(endpoint_url="http://s3.test:9000/photos"), f"{ENDPOINT} cannot be reached."),
        (ReadTimeoutError(endpoint_url="http://s3.test:9000"), f"{ENDPOINT} did not answer in time."),
        (client_error("InvalidAccessKeyId"), f"{ENDPOINT} does not know the access key id (GATEWAY_S3_ACCESS_KEY_ID)."),
        (
            client_error("SignatureDoesNotMatch"),
            f"{ENDPOINT} rejected the secret access key (GATEWAY_S3_SECRET_ACCESS_KEY).",
        ),
        (client_error("AccessDenied"), "The S3 credentials are not allowed to use the bucket 'photos'."),
        (client_error("NoSuchBucket"), "The S3 bucket 'photos' does not exist."),
        (
            client_error("SlowDown", "Reduce your request rate."),
            f"{ENDPOINT} answered SlowDown: Reduce your request rate.",
        ),
    ],
)
def test_each_store_failure_is_one_sentence_naming_its_cause(error: Exception, sentence: str) -> None:
    assert describe_failure(error, TARGET) == sentence


def test_a_bucket_that_cannot_be_created_names_the_servers_code() -> None:
    sentence = describe_create_failure(client_error("AccessDenied"), TARGET)
    assert sentence == "The S3 bucket 'photos' does not exist and could not be created (AccessDenied)."
    assert "secret access key" in describe_create_failure(client_error("SignatureDoesNotMatch"), TARGET)
