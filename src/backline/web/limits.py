"""Request body limits, enforced while the body streams in (pure ASGI middleware).

A declared ``Content-Length`` over the limit is refused before any byte is
read; a chunked body is counted as it arrives and cut off with 413 as soon
as it passes the limit.
"""

from __future__ import annotations

import json

from fastapi import HTTPException


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes the limit (rendered as 413)."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"request body over the limit of {limit} bytes")


class BodyLimit:
    def __init__(self, app, *, default_limit: int, upload_limit: int, upload_suffix: str = "/evidence",
                 suffix_limits: dict[str, int] | None = None):
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_suffix = upload_suffix
        self.suffix_limits = dict(suffix_limits or {})     # other paths with their own limit, by ending

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"].rstrip("/")
        limit = self.upload_limit if path.endswith(self.upload_suffix) else next(
            (n for suffix, n in self.suffix_limits.items() if path.endswith(suffix)), self.default_limit)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _reply(send, 400, "bad_request", "Content-Length is not a number")
                if declared > limit:
                    return await _reply(send, 413, "too_large", f"request body over the limit of {limit} bytes")
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _reply(send, 413, "too_large", f"request body over the limit of {limit} bytes")


async def _reply(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
