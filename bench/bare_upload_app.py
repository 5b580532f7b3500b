"""The baseline of the upload benchmark: a bare Litestar app that reads the multipart body, answers 202."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, post


@post("/api/images", status_code=202)
async def accept(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    upload = form.get("image")
    await upload.read()  # type: ignore[union-attr]
    return {"status": "pending"}


app = Litestar([accept], request_max_body_size=25 * 1024 * 1024, logging_config=None)
