"""The one error shape clients of an OpenAI-compatible server understand: {"error": {message, type, code}}."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answer. `extra` adds keys to the error object (e.g. Azure's innererror)."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type, code
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": None, "code": self.code, **self.extra}}


def upstream_error(message: str, timeout: bool = False) -> ApiError:
    """502 (down, garbage) or 504 (too slow): the upstream's fault, not the client's."""
    return ApiError(504 if timeout else 502, message, type="upstream_error", code="upstream_timeout" if timeout else "upstream_error")
