"""Server-sent events both ways: a bounded incremental decoder for an upstream's stream, and the
encoder of prism's own events. Kept apart from HTTP so both are testable on bytes alone."""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 1 << 20
"""A line longer than this is garbage, not a token: the upstream is cut off instead of filling memory."""
DONE = b"data: [DONE]\n\n"


class MalformedStream(Exception):
    """The upstream's bytes are not an event stream (or it reported an error in one)."""


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


class SseDecoder:
    """Bytes in, the data of complete events out. `error:` lines (llama.cpp's server) raise."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buf += chunk
        out: list[str] = []
        start = 0
        while True:
            i = self._buf.find(b"\n", start)
            if i < 0:
                break
            self._line(bytes(self._buf[start:i]).rstrip(b"\r"), out)
            start = i + 1
        del self._buf[:start]
        if len(self._buf) > MAX_LINE:
            raise MalformedStream(f"a line longer than {MAX_LINE} bytes")
        return out

    def close(self) -> list[str]:
        """End of stream: a last event without its blank line still counts."""
        out: list[str] = []
        if self._buf:
            self._line(bytes(self._buf).rstrip(b"\r"), out)
            self._buf.clear()
        if self._data:
            out.append("\n".join(self._data))
            self._data = []
        return out

    def _line(self, raw: bytes, out: list[str]) -> None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedStream("invalid UTF-8") from None
        if not line:
            if self._data:
                out.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return  # a comment or keep-alive
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "error":
            raise MalformedStream(f"the upstream failed mid-stream: {value[:200]}")
        elif name not in ("event", "id", "retry"):
            raise MalformedStream(f"unexpected line {line[:80]!r}")


class EventStream:
    """An ASGI text/event-stream response that notices a client leaving while nothing is being sent
    (a reply held back for a check, a slow upstream): the event source is then closed at once,
    which cancels the upstream request. `on_end` runs however the stream ends."""

    def __init__(self, events: Any, on_end: Any = None):
        self.events, self.on_end = events, on_end

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import anyio

        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                   (b"x-accel-buffering", b"no")]  # fmt: skip
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                try:
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    async for chunk in self.events:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except OSError:
                    pass  # the client is gone
                finally:
                    with anyio.CancelScope(shield=True):
                        await self.events.aclose()
                tg.cancel_scope.cancel()
        finally:
            if self.on_end is not None:
                self.on_end()
