"""The gateway's only door to the inference replicas: timeouts, retries, error translation.

httpx errors and HTTP statuses are translated once, here: transport errors, timeouts, 429
and 5xx become ``InferenceUnavailableError`` (retried with jittered exponential backoff that
honours ``Retry-After``); any other 4xx becomes ``CaptionRejectedError`` (never retried).
A caption that fails on one replica is tried at once on every other ready one before any
back-off sleep; the pool (``gateway.replicas.pool``) decides which replica comes next.
"""

from __future__ import annotations

import email.utils
import time

import httpx
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from contracts.captions import CAPTIONS_PATH, READY_PATH, CaptionParams, CaptionResponse, ReadinessResponse
from contracts.model_info import MODEL_INFO_PATH, ModelInfo
from contracts.problem import MODEL_LOAD_FAILED_SLUG, PROBLEM_TYPE_PREFIX, Problem
from gateway.errors import (
    CaptionRejectedError,
    InferenceModelMissingError,
    InferenceUnavailableError,
    ReplicaModelMissingError,
    ReplicasDisagreeError,
)
from gateway.metrics import GatewayMetrics
from gateway.persistence.models import CaptionModel
from gateway.replicas.discovery import Resolver, resolve_addresses
from gateway.replicas.pool import InferencePool, InferenceReadiness, ReplicaProbe, Strategy
from gateway.settings import GatewaySettings

REQUEST_ID_HEADER = "X-Request-ID"
MAX_RETRY_AFTER_S = 60.0
READY_TIMEOUT_S = 2.0
READY_RETRY_AFTER_S = 5.0


__all__ = ["InferenceClient", "InferenceReadiness", "made_by", "parse_retry_after"]


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, InferenceUnavailableError) and not isinstance(error, InferenceModelMissingError)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _problem_type(response: httpx.Response) -> str | None:
    try:
        return Problem.model_validate_json(response.content).type
    except ValidationError:
        return None


def _problem_detail(response: httpx.Response) -> str:
    try:
        problem = Problem.model_validate_json(response.content)
    except ValidationError:
        text = response.text.strip().replace("\n", " ")
        return text[:200] or response.reason_phrase
    return problem.detail or problem.title


class _BackoffHonouringRetryAfter:
    """Jittered exponential backoff, unless the server said how long to wait."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, InferenceUnavailableError) and error.retry_after_s is not None:
            return min(error.retry_after_s, MAX_RETRY_AFTER_S)
        return float(self._backoff(retry_state))


class InferenceClient:
    """Captions and readiness from a pool of inference replicas over HTTP."""

    def __init__(
        self,
        settings: GatewaySettings,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        metrics: GatewayMetrics | None = None,
        resolver: Resolver = resolve_addresses,
        strategy: Strategy = Strategy.LEAST_IN_FLIGHT,
    ) -> None:
        self._attempts = settings.inference_attempts
        self._wait = _BackoffHonouringRetryAfter(settings.inference_backoff_s, settings.inference_backoff_max_s)
        self._timeout_s = settings.inference_timeout_s
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(settings.inference_timeout_s, connect=settings.inference_connect_timeout_s),
        )
        self.pool = InferencePool(settings, self._probe, metrics=metrics, resolver=resolver, strategy=strategy)

    async def start(self) -> None:
        """Find and probe the replicas; raises ``CaptionTokensUnservableError`` for a setting no model serves."""
        await self.pool.start()

    async def aclose(self) -> None:
        await self.pool.stop()
        await self._client.aclose()

    async def caption(
        self, image: bytes, media_type: str, request_id: str, params: CaptionParams | None = None
    ) -> CaptionResponse:
        """Caption ``image``; each attempt tries every ready replica once, up to the attempt budget."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception(_worth_retrying),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._caption_round(image, media_type, request_id, params or CaptionParams())
        except InferenceModelMissingError:
            raise
        except InferenceUnavailableError as exc:
            raise InferenceUnavailableError(
                f"{exc.detail} (gave up after {self._attempts} attempt{'s' if self._attempts > 1 else ''})",
                retry_after_s=exc.retry_after_s,
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def _caption_round(
        self, image: bytes, media_type: str, request_id: str, params: CaptionParams
    ) -> CaptionResponse:
        """One attempt: the chosen replica, then at once each other ready replica that was not tried."""
        reason = self.pool.unservable_reason()
        if reason is not None:
            raise InferenceModelMissingError(reason)
        tried: set[str] = set()
        last: InferenceUnavailableError | None = None
        while (lease := self.pool.acquire(tried)) is not None:
            tried.add(lease.url)
            failure: InferenceUnavailableError | None = None
            try:
                return await self._caption_on(lease.url, image, media_type, request_id, params)
            except InferenceUnavailableError as exc:
                failure = last = exc
            finally:
                self.pool.release(lease, failure)
        if (reason := self.pool.unservable_reason()) is not None:  # a caption found every model missing
            raise InferenceModelMissingError(reason)
        raise last or InferenceUnavailableError(self.pool.readiness().detail)

    async def _caption_on(
        self, base_url: str, image: bytes, media_type: str, request_id: str, params: CaptionParams
    ) -> CaptionResponse:
        try:
            response = await self._client.post(
                base_url + CAPTIONS_PATH,
                content=image,
                params=params.as_query(),
                headers={"Content-Type": media_type, REQUEST_ID_HEADER: request_id},
            )
        except httpx.TimeoutException as exc:
            raise InferenceUnavailableError(
                f"The inference service at {base_url} did not answer within {self._timeout_s:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise InferenceUnavailableError(
                f"The inference service at {base_url} could not be reached ({type(exc).__name__}: {exc})"
            ) from exc
        if response.status_code == 503 and _problem_type(response) == PROBLEM_TYPE_PREFIX + MODEL_LOAD_FAILED_SLUG:
            raise ReplicaModelMissingError(f"The inference service at {base_url}: {_problem_detail(response)}")
        if response.status_code == 429 or response.status_code >= 500:
            raise InferenceUnavailableError(
                f"The inference service answered {response.status_code}: {_problem_detail(response)}",
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            raise CaptionRejectedError(
                f"The inference service refused the image with {response.status_code}: {_problem_detail(response)}"
            )
        try:
            caption = CaptionResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise InferenceUnavailableError(
                f"The inference service answered {response.status_code} with a body that is not a caption"
            ) from exc
        known = self.pool.model_of(base_url)
        if caption.precision is None and known is not None and known.id == caption.model:  # an older service
            caption = caption.model_copy(update={"revision": known.revision, "precision": known.precision})
        return caption

    async def readiness(self, request_id: str | None = None) -> InferenceReadiness:
        """Probe every replica now; ready when any is. Never raises."""
        await self.pool.refresh(request_id)
        return self.pool.readiness()

    async def _probe(self, base_url: str, request_id: str | None = None) -> ReplicaProbe:
        """One replica's readiness, load state and token limit, in one sentence; never raises."""
        headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
        try:
            response = await self._client.get(base_url + READY_PATH, headers=headers, timeout=READY_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return ReplicaProbe(False, f"The inference service at {base_url} cannot be reached ({type(exc).__name__}).")
        try:
            body = ReadinessResponse.model_validate_json(response.content)
        except ValidationError:
            body = ReadinessResponse(status="not_ready", detail=_problem_detail(response))
        if response.status_code != 200:
            detail = body.detail or f"The inference service answered {response.status_code} to its readiness check."
            return ReplicaProbe(False, detail, load_failed=body.state == "failed")
        info = await self._model_info(base_url, headers)
        return ReplicaProbe(
            True,
            body.detail or "The inference service is ready.",
            max_new_tokens_limit=info.max_new_tokens_limit if info else None,
            model=CaptionModel(info.name, info.revision, info.precision) if info else None,
        )

    async def _model_info(self, base_url: str, headers: dict[str, str]) -> ModelInfo | None:
        """``GET /v1/model`` (the model's identity and token limit); ``None`` when it does not answer."""
        try:
            response = await self._client.get(base_url + MODEL_INFO_PATH, headers=headers, timeout=READY_TIMEOUT_S)
            response.raise_for_status()
            return ModelInfo.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError):
            return None

    async def served_model(self) -> CaptionModel:
        """The one model the ready replicas serve, probed now.

        ``InferenceUnavailableError`` when no replica is ready (or none said what it serves),
        ``ReplicasDisagreeError`` while they serve different models (a switch half done).
        """
        readiness = await self.readiness()
        models = self.pool.served_models()
        if not models:
            raise InferenceUnavailableError(
                f"The model now served is unknown: {readiness.detail}", retry_after_s=READY_RETRY_AFTER_S
            )
        if len(models) > 1:
            names = ", ".join(sorted(model.describe() for model in models))
            raise ReplicasDisagreeError(
                f"The ready inference replicas serve different models ({names}); "
                "wait until every replica serves the new one, or queue every caption."
            )
        return models.pop()


def made_by(caption: CaptionResponse) -> CaptionModel:
    """What made ``caption``, as the replica that wrote it reports it."""
    return CaptionModel(caption.model, caption.revision, caption.precision)
