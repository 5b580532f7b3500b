"""Domain errors of the inference service, each carrying the HTTP status it maps to.

InferenceServiceError
├── UnsupportedImageError (415): not JPEG/PNG by its leading bytes
├── UnreadableImageError (422): JPEG/PNG bytes that cannot be decoded
├── ImageTooLargeError (413): too many pixels by the header
├── InvalidRequestError (400): bad query parameters
├── BeyondModelLimitError (422): more new tokens (or a longer prompt) than the model has positions for
├── ModelNotReadyError (503, Retry-After): the model is still loading, or the service is stopping
├── ModelLoadFailedError (503, no Retry-After): the model failed to load; retrying soon will not help
├── QueueFullError (503, Retry-After): the request queue is full
└── CaptionTimeoutError (503, Retry-After): the caption did not finish in time
"""

from __future__ import annotations

from contracts.problem import MODEL_LOAD_FAILED_SLUG
from servicekit.errors import ServiceError


class InferenceServiceError(ServiceError):
    """Base of every domain error of the inference service."""


class UnsupportedImageError(InferenceServiceError):
    status = 415
    title = "Unsupported image format"
    type_slug = "unsupported-format"


class UnreadableImageError(InferenceServiceError):
    status = 422
    title = "Unreadable image"
    type_slug = "unreadable-image"


class ImageTooLargeError(InferenceServiceError):
    status = 413
    title = "Image too large"
    type_slug = "image-too-large"


class InvalidRequestError(InferenceServiceError):
    status = 400
    title = "Invalid request"
    type_slug = "invalid-request"


class BeyondModelLimitError(InferenceServiceError):
    status = 422
    title = "Beyond the model's limit"
    type_slug = "beyond-model-limit"


class ModelNotReadyError(InferenceServiceError):
    status = 503
    title = "Model not ready"
    type_slug = "model-not-ready"


class ModelLoadFailedError(InferenceServiceError):
    status = 503
    title = "Model failed to load"
    type_slug = MODEL_LOAD_FAILED_SLUG


class QueueFullError(InferenceServiceError):
    status = 503
    title = "Too many requests queued"
    type_slug = "queue-full"


class CaptionTimeoutError(InferenceServiceError):
    status = 503
    title = "Caption timed out"
    type_slug = "caption-timeout"
