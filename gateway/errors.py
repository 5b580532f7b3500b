"""Domain errors of the gateway, each carrying the HTTP status it maps to.

GatewayError
├── BadUploadError (400, bad_request)
├── UploadTooLargeError (413, too_large)
│   └── ImageTooLargeError (413, too_large): pixel count from the header alone
├── UnsupportedImageError (415, unsupported_format)
├── UnreadableImageError (422, unreadable)
├── UploadAbortedError: the upload ended without a verdict on the image; not counted as a rejection
│   ├── UploadTimeoutError (408): the body stalled longer than GATEWAY_BODY_IDLE_TIMEOUT_S
│   └── ClientDisconnectedError (400): the client went away mid-body
├── IdempotencyError: Idempotency-Key misuse (not counted as a rejection)
│   ├── InvalidIdempotencyKeyError (400)
│   ├── IdempotencyKeyInUseError (409): the first request with this key is still in flight
│   └── IdempotencyKeyMismatchError (422): the key was used with other file bytes
├── InvalidQueryError (400)
├── InvalidBodyError (400): a JSON body that is not the documented one
├── AuthenticationRequiredError (401)
├── ImageNotFoundError (404)
│   └── ThumbnailNotAvailableError (404): the image failed before thumbnails were made
├── ThumbnailNotReadyError (409, Retry-After)
├── InvalidStateError (409)
├── ReplicasDisagreeError (409): the ready replicas serve different models (re-captioning needs one)
├── StorageUnavailableError (503): database or disk failure
├── InferenceError: the caption could not be had
│   ├── InferenceUnavailableError (503): transport error, timeout, 429 or 5xx; retried
│   │   ├── ReplicaModelMissingError (503): one replica's model failed to load; others are tried
│   │   └── InferenceModelMissingError (503): every replica's model failed to load; not retried
│   └── CaptionRejectedError (502): any other 4xx; not retried
└── ImageDecodeError (422): data behind a valid header is corrupt or truncated (pipeline only)
"""

from __future__ import annotations

from typing import ClassVar

from servicekit.errors import ServiceError


class GatewayError(ServiceError):
    """Base of every domain error; ``status`` and ``title`` feed the problem+json map."""


class UploadRejectedError(GatewayError):
    """An upload refused synchronously; ``reason`` is the stats bucket it is counted in."""

    reason: ClassVar[str] = "bad_request"


class BadUploadError(UploadRejectedError):
    status = 400
    title = "Bad upload"
    type_slug = "bad-upload"
    reason = "bad_request"


class UploadTooLargeError(UploadRejectedError):
    status = 413
    title = "Upload too large"
    type_slug = "upload-too-large"
    reason = "too_large"


class ImageTooLargeError(UploadTooLargeError):
    title = "Image has too many pixels"
    type_slug = "image-too-large"


class UnsupportedImageError(UploadRejectedError):
    status = 415
    title = "Unsupported image format"
    type_slug = "unsupported-format"
    reason = "unsupported_format"


class UnreadableImageError(UploadRejectedError):
    status = 422
    title = "Unreadable image"
    type_slug = "unreadable-image"
    reason = "unreadable"


class UploadAbortedError(GatewayError):
    """The upload ended before the image could be judged; not a rejection of the image."""


class UploadTimeoutError(UploadAbortedError):
    status = 408
    title = "Request timeout"
    type_slug = "request-timeout"


class ClientDisconnectedError(UploadAbortedError):
    status = 400
    title = "Client disconnected"
    type_slug = "client-disconnected"


class IdempotencyError(GatewayError):
    """Misuse of the ``Idempotency-Key`` header."""


class InvalidIdempotencyKeyError(IdempotencyError):
    status = 400
    title = "Invalid Idempotency-Key"
    type_slug = "invalid-idempotency-key"


class IdempotencyKeyInUseError(IdempotencyError):
    status = 409
    title = "Idempotency-Key in use"
    type_slug = "idempotency-key-in-use"


class IdempotencyKeyMismatchError(IdempotencyError):
    status = 422
    title = "Idempotency-Key reused"
    type_slug = "idempotency-key-mismatch"


class InvalidQueryError(GatewayError):
    status = 400
    title = "Invalid query parameter"
    type_slug = "invalid-query"


class InvalidBodyError(GatewayError):
    status = 400
    title = "Invalid request body"
    type_slug = "invalid-body"


class AuthenticationRequiredError(GatewayError):
    status = 401
    title = "Authentication required"
    type_slug = "authentication-required"


class ImageNotFoundError(GatewayError):
    status = 404
    title = "Image not found"
    type_slug = "image-not-found"


class ThumbnailNotAvailableError(ImageNotFoundError):
    title = "Thumbnail not available"
    type_slug = "thumbnail-not-available"


class ThumbnailNotReadyError(GatewayError):
    status = 409
    title = "Thumbnail not ready"
    type_slug = "thumbnail-not-ready"


class InvalidStateError(GatewayError):
    status = 409
    title = "Invalid image state"
    type_slug = "invalid-state"


class ReplicasDisagreeError(GatewayError):
    status = 409
    title = "Inference replicas serve different models"
    type_slug = "replicas-disagree"


class StorageUnavailableError(GatewayError):
    status = 503
    title = "Storage unavailable"
    type_slug = "storage-unavailable"


class InferenceError(GatewayError):
    """The caption could not be had from the inference service."""

    caption_status: ClassVar[str] = "failed"


class InferenceUnavailableError(InferenceError):
    status = 503
    title = "Inference service unavailable"
    type_slug = "inference-unavailable"
    caption_status = "unavailable"


class ReplicaModelMissingError(InferenceUnavailableError):
    """One replica answered a caption with its model-load-failed 503: it is out until a probe says otherwise."""


class InferenceModelMissingError(InferenceUnavailableError):
    """Every replica says its model failed to load (or cannot serve the settings): retrying soon will not help."""


class CaptionRejectedError(InferenceError):
    status = 502
    title = "Caption refused by the inference service"
    type_slug = "caption-rejected"
    caption_status = "failed"


class ImageDecodeError(GatewayError):
    status = 422
    title = "Image data is corrupt"
    type_slug = "image-decode-failed"
