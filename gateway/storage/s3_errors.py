"""botocore's errors, translated once: a missing object, or one sentence on why the store is unusable."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

# Everything a call to the store can raise besides our own errors.
S3_FAILURES = (BotoCoreError, ClientError, aiohttp.ClientError, TimeoutError)
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Target:
    endpoint_url: str
    bucket: str


def describe_malformed(target: S3Target) -> str | None:
    """One sentence when the endpoint or bucket setting cannot be right whatever the server says."""
    if not target.endpoint_url.startswith(("http://", "https://")):
        return f"GATEWAY_S3_ENDPOINT_URL must be an http:// or https:// URL, not '{target.endpoint_url}'."
    if not S3_BUCKET_NAME.fullmatch(target.bucket):
        return f"GATEWAY_S3_BUCKET must be 3-63 lowercase letters, digits, '.' or '-', not '{target.bucket}'."
    return None


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in MISSING_CODES


def describe_failure(exc: BaseException, target: S3Target) -> str:
    """One sentence saying which of endpoint, credentials or bucket is wrong (for readiness and logs)."""
    endpoint, bucket = target.endpoint_url, target.bucket
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | aiohttp.ClientConnectionError):
        return f"The S3 endpoint {endpoint} cannot be reached."
    if isinstance(exc, ReadTimeoutError | TimeoutError):
        return f"The S3 endpoint {endpoint} did not answer in time."
    code = error_code(exc)
    if code == "InvalidAccessKeyId":
        return f"The S3 endpoint {endpoint} does not know the access key id (GATEWAY_S3_ACCESS_KEY_ID)."
    if code == "SignatureDoesNotMatch":
        return f"The S3 endpoint {endpoint} rejected the secret access key (GATEWAY_S3_SECRET_ACCESS_KEY)."
    if code in ("AccessDenied", "403"):
        return f"The S3 credentials are not allowed to use the bucket '{bucket}'."
    if code == "NoSuchBucket":
        return f"The S3 bucket '{bucket}' does not exist."
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message", "")).rstrip(".")
        return f"The S3 endpoint {endpoint} answered {code}: {message or 'no message'}."
    return f"The S3 endpoint {endpoint} failed: {type(exc).__name__}."


def describe_create_failure(exc: BaseException, target: S3Target) -> str:
    code = error_code(exc)
    if code is None or code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return describe_failure(exc, target)
    return f"The S3 bucket '{target.bucket}' does not exist and could not be created ({code})."
