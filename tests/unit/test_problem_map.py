"""Every domain error maps to its status, as problem+json, in one place."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from gateway import errors
from gateway.problems import EXCEPTION_HANDLERS
from tests.support import problem_of

EXPECTED_STATUS: list[tuple[type[errors.GatewayError], int]] = [
    (errors.BadUploadError, 400),
    (errors.InvalidQueryError, 400),
    (errors.InvalidBodyError, 400),
    (errors.ClientDisconnectedError, 400),
    (errors.InvalidIdempotencyKeyError, 400),
    (errors.UploadTimeoutError, 408),
    (errors.IdempotencyKeyInUseError, 409),
    (errors.IdempotencyKeyMismatchError, 422),
    (errors.AuthenticationRequiredError, 401),
    (errors.ImageNotFoundError, 404),
    (errors.ThumbnailNotAvailableError, 404),
    (errors.ThumbnailNotReadyError, 409),
    (errors.InvalidStateError, 409),
    (errors.ReplicasDisagreeError, 409),
    (errors.UploadTooLargeError, 413),
    (errors.ImageTooLargeError, 413),
    (errors.UnsupportedImageError, 415),
    (errors.UnreadableImageError, 422),
    (errors.ImageDecodeError, 422),
    (errors.CaptionRejectedError, 502),
    (errors.InferenceUnavailableError, 503),
    (errors.InferenceModelMissingError, 503),
    (errors.ReplicaModelMissingError, 503),
    (errors.StorageUnavailableError, 503),
]


def app_raising(exc: Exception) -> Litestar:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise exc

    return Litestar([boom], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)


def test_every_domain_error_is_in_the_table() -> None:
    def leaves(cls: type[errors.GatewayError]) -> set[type[errors.GatewayError]]:
        found = set()
        for sub in cls.__subclasses__():
            found |= {sub} | leaves(sub)
        return found

    concrete = {cls for cls in leaves(errors.GatewayError) if cls.status != 500}
    assert concrete == {cls for cls, _ in EXPECTED_STATUS}


@pytest.mark.parametrize(("error_class", "status"), EXPECTED_STATUS, ids=lambda value: getattr(value, "__name__", ""))
def test_domain_error_maps_to_problem_json(error_class: type[errors.GatewayError], status: int) -> None:
    with TestClient(app_raising(error_class("a human sentence naming the cause"))) as client:
        response = client.get("/boom")
    assert response.status_code == status
    body = problem_of(response)
    assert body["detail"] == "a human sentence naming the cause"
    assert body["title"] == error_class.title
    assert body["type"].endswith(error_class.type_slug)


def test_retry_after_becomes_a_header() -> None:
    with TestClient(app_raising(errors.ThumbnailNotReadyError("wait", retry_after_s=1.5))) as client:
        response = client.get("/boom")
    assert response.headers["retry-after"] == "2"


def test_storage_failure_always_says_when_to_retry() -> None:
    with TestClient(app_raising(errors.StorageUnavailableError("db down"))) as client:
        response = client.get("/boom")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("exc", "status"),
    [(OSError(28, "No space left on device"), 503), (RuntimeError("bug"), 500), (KeyError("x"), 500)],
)
def test_unexpected_errors_are_problems_without_stack_traces(exc: Exception, status: int) -> None:
    with TestClient(app_raising(exc)) as client:
        response = client.get("/boom")
    body: dict[str, Any] = problem_of(response)
    assert response.status_code == status
    assert "Traceback" not in response.text
    assert "bug" not in body["detail"]


def test_unknown_route_is_a_problem_404() -> None:
    with TestClient(app_raising(RuntimeError())) as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    problem_of(response)
