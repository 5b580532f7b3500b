"""The published OpenAPI schema says what docs/API.md says: statuses, problem bodies, headers."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from contracts.problem import PROBLEM_MEDIA_TYPE

pytestmark = pytest.mark.gateway_settings(workers=0)

IMAGE = "/api/images/{image_id}"
EXPECTED_STATUSES = {
    ("post", "/api/images"): {"202", "400", "401", "413", "415", "422", "503"},
    ("get", "/api/images"): {"200", "400", "503"},
    ("get", IMAGE): {"200", "404", "503"},
    ("get", IMAGE + "/original"): {"200", "404", "503"},
    ("get", IMAGE + "/thumbnails/{size}"): {"200", "304", "404", "409", "503"},
    ("delete", IMAGE): {"204", "401", "404", "503"},
    ("post", IMAGE + "/retry"): {"202", "401", "404", "409", "503"},
    ("post", "/api/captions/recaption"): {"202", "400", "401", "409", "503"},
    ("get", "/api/stats"): {"200", "503"},
    ("get", "/health/ready"): {"200", "503"},
}


@pytest.fixture
async def schema(client: AsyncTestClient[Any]) -> dict[str, Any]:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]
    return found


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED_STATUSES))
def test_every_status_of_the_contract_is_declared(schema: dict[str, Any], method: str, path: str) -> None:
    declared = set(operation(schema, method, path)["responses"])
    assert EXPECTED_STATUSES[method, path] <= declared


@pytest.mark.parametrize(("method", "path"), sorted(key for key in EXPECTED_STATUSES if key[1].startswith("/api")))
def test_every_api_error_is_declared_as_problem_json(schema: dict[str, Any], method: str, path: str) -> None:
    for status, response in operation(schema, method, path)["responses"].items():
        if int(status) >= 400:
            assert set(response["content"]) == {PROBLEM_MEDIA_TYPE}, f"{method} {path} {status}"


def test_upload_declares_its_multipart_body_and_location(schema: dict[str, Any]) -> None:
    upload = operation(schema, "post", "/api/images")
    body = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["image"]
    # An empty file and bytes of another format were schema-valid uploads answered 400/415 (schemathesis ST202).
    assert body["properties"]["image"]["minLength"] == 1
    encoding = upload["requestBody"]["content"]["multipart/form-data"]["encoding"]
    assert encoding["image"]["contentType"] == "image/jpeg, image/png"
    assert "Location" in upload["responses"]["202"]["headers"]


def test_thumbnail_declares_both_answers_and_its_headers(schema: dict[str, Any]) -> None:
    thumbnail = operation(schema, "get", IMAGE + "/thumbnails/{size}")
    ok = thumbnail["responses"]["200"]
    assert set(ok["content"]) == {"image/jpeg", "application/json"}
    assert set(ok["content"]["application/json"]["schema"]["required"]) == {
        "id", "size", "url", "width", "height", "caption"
    }  # fmt: skip
    assert {"X-Caption", "ETag", "Vary", "Cache-Control"} <= set(ok["headers"])
    assert "Retry-After" in thumbnail["responses"]["409"]["headers"]


def test_original_declares_the_image_content_types(schema: dict[str, Any]) -> None:
    original = operation(schema, "get", IMAGE + "/original")
    assert set(original["responses"]["200"]["content"]) == {"image/jpeg", "image/png"}


def test_stats_schema_has_exactly_the_contract_shape(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    stats_ref = operation(schema, "get", "/api/stats")["responses"]["200"]["content"]["application/json"]["schema"]
    stats = components[stats_ref["$ref"].rsplit("/", 1)[-1]]
    assert list(stats["properties"]) == [
        "total", "by_status", "success_rate", "failure_rate", "processing_ms", "end_to_end_ms", "stage_ms_avg",
        "captions", "rejected", "recaption", "uptime_s", "uptime_scope",
    ]  # fmt: skip

    def fields_of(name: str) -> list[str]:
        ref = stats["properties"][name]["$ref"].rsplit("/", 1)[-1]
        return list(components[ref]["properties"])

    assert fields_of("by_status") == ["pending", "processing", "completed", "failed"]
    assert fields_of("processing_ms") == ["avg", "p50", "p95", "max"]
    assert fields_of("end_to_end_ms") == ["avg", "p50", "p95", "max"]
    assert fields_of("stage_ms_avg") == ["decode", "metadata", "thumbnails", "caption"]
    assert fields_of("captions") == ["pending", "completed", "failed", "unavailable"]
    assert fields_of("rejected") == ["too_large", "unsupported_format", "unreadable", "bad_request"]
    assert fields_of("recaption") == ["queued", "done", "failed"]


def test_the_list_documents_q_with_its_length_limit(schema: dict[str, Any]) -> None:
    parameters = {parameter["name"]: parameter for parameter in operation(schema, "get", "/api/images")["parameters"]}
    q = parameters["q"]
    assert q["in"] == "query"
    assert not q.get("required", False)
    assert q["schema"]["maxLength"] == 200 or any(
        option.get("maxLength") == 200 for option in q["schema"].get("oneOf", [])
    )
    assert "every word" in q["description"]


def test_recaption_declares_its_body_and_answer(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    found = operation(schema, "post", "/api/captions/recaption")
    body_ref = found["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    answer_ref = found["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert components[body_ref]["properties"]["all"]["type"] == "boolean"
    assert list(components[answer_ref]["properties"]) == ["queued"]


def test_image_details_declare_what_made_the_caption(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    caption = components["CaptionView"]["properties"]
    assert list(caption) == ["text", "status", "model", "precision", "error", "recaption"]
    assert list(components["ModelView"]["properties"]) == ["id", "revision"]
    assert components["RecaptionView"]["properties"]["status"]["enum"] == ["queued", "done", "failed"]
