"""Webhook signatures verify with a Standard Webhooks verifier; secrets and retry delays are checked."""

from __future__ import annotations

import base64
import time

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.events.webhooks.sender import retry_delay_s
from gateway.events.webhooks.signing import signed_headers
from gateway.settings import GatewaySettings, decode_secret

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_signed_headers_verify_with_the_standard_webhooks_library() -> None:
    body = b'{"type":"image.completed","event_id":7,"data":{}}'
    headers = signed_headers(decode_secret(SECRET), "7", int(time.time()), body)
    assert Webhook(SECRET).verify(body, headers) == {"type": "image.completed", "event_id": 7, "data": {}}
    assert headers["webhook-id"] == "7"
    assert headers["webhook-signature"].startswith("v1,")


def test_a_changed_body_or_id_does_not_verify() -> None:
    body = b'{"a":1}'
    headers = signed_headers(decode_secret(SECRET), "7", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, {**headers, "webhook-id": "8"})


def test_a_bare_base64_secret_is_the_same_key_as_its_whsec_form() -> None:
    assert decode_secret(SECRET) == decode_secret(SECRET.removeprefix("whsec_"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"webhook_urls": "http://receiver.test/hooks"}, "needs GATEWAY_WEBHOOK_SECRET"),
        ({"webhook_urls": "ftp://receiver.test/hooks", "webhook_secret": SECRET}, r"is not an http\(s\) URL"),
        ({"webhook_urls": "http://receiver.test/", "webhook_secret": "not base64!"}, "must be base64"),
        ({"webhook_urls": "http://receiver.test/", "webhook_secret": "whsec_c2hvcnQ="}, "at least 16 bytes"),
    ],
)
def test_webhook_settings_refuse_what_cannot_be_delivered_or_signed(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(**overrides)  # type: ignore[arg-type]


def test_webhook_urls_are_a_comma_list_without_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_WEBHOOK_URLS", "http://a.test/h, https://b.test/h,,http://a.test/h")
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRET", SECRET)
    assert GatewaySettings().webhook_urls == ("http://a.test/h", "https://b.test/h")


def test_retry_delays_double_with_jitter_up_to_the_cap() -> None:
    for attempts, low, high in [(1, 0.5, 1.0), (2, 1.0, 2.0), (4, 4.0, 8.0), (30, 30.0, 60.0)]:
        delays = [retry_delay_s(attempts, 1.0, 60.0) for _ in range(50)]
        assert all(low <= delay <= high for delay in delays)
        assert len(set(delays)) > 1
