"""ASGI middleware that bounds request bodies and refuses ``/v1`` requests without a key."""

from __future__ import annotations

from typing import Any

from vidauth.service.routes.answers import error_response


class RequestLimit:
    """ASGI middleware: bodies are read only from callers that may send them, and bounded.

    Every ``/v1`` request without ``Authorization: Bearer <key>`` is answered 401 before a byte
    of its body is read. Every body but the upload's is read here, up to ``max_bytes``
    (Content-Length or not: a chunked body is counted as it comes), and 413 once it is over.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/") and not _has_bearer(scope):
            response = error_response(
                401,
                "unauthorized",
                "send an API key: Authorization: Bearer <key>",
                {"WWW-Authenticate": "Bearer", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        if scope["method"] == "POST" and path == "/v1/uploads":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        messages: list[Any] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Any:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = error_response(
            413,
            "too_large",
            f"request bodies are limited to {self.max_bytes} bytes",
            {"Connection": "close"},
        )
        await response(scope, receive, send)


def _has_bearer(scope: Any) -> bool:
    """Whether the request carries ``Authorization: Bearer <something>``."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return scheme.lower() == b"bearer" and bool(credentials.strip())
    return False
