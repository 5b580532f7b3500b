"""OpenAPI pieces both services declare the same way: problem responses and the Retry-After header."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIType, Schema

from contracts.problem import PROBLEM_MEDIA_TYPE, Problem

RETRY_AFTER = OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait before asking again.")


def problem_responses(descriptions: dict[int, str]) -> dict[int, ResponseSpec]:
    """``responses=`` entries whose body is an RFC 9457 problem, one per status with what it means."""
    return {
        status: ResponseSpec(
            data_container=Problem, description=text, media_type=PROBLEM_MEDIA_TYPE, generate_examples=False
        )
        for status, text in descriptions.items()
    }
