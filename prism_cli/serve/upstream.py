"""The model server behind the proxy, over httpx. Every way it can fail becomes one ApiError:
unreachable or garbage -> 502, too slow -> 504, its own 4xx passed on with its words. A reply is
always requested as a stream, so prism can stop generation the moment a check blocks it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx

from prism_cli.engines.http import _error_message, parse_base_url
from prism_cli.serve import tool_calls
from prism_cli.serve.errors import ApiError, upstream_error
from prism_cli.serve.sse import MalformedStream, SseDecoder

PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}
MAX_ERROR_BODY = 65536


@dataclass
class ReplyMeta:
    """What the upstream said about its reply besides the text."""

    id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """The reply's tool calls as gathered so far (tool_calls.py): checked and sent once it ends."""


class Upstream:
    def __init__(self, url: str, *, key: str | None, connect_timeout: float, read_timeout: float, max_connections: int):
        try:
            scheme, host, port, prefix = parse_base_url(url)
        except ValueError as e:
            from prism_cli.errors import InputError

            raise InputError(f"--upstream: {e}") from None
        self.base_url = f"{scheme}://{host}{f':{port}' if port else ''}{prefix}"
        self.key = key
        self.read_timeout = read_timeout
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,  # private by default: no proxy settings from the environment
        )

    def headers(self, client_auth: str | None) -> dict[str, str]:
        """--upstream-key if given, else the client's own Authorization (only when prism has no key of its own)."""
        auth = f"Bearer {self.key}" if self.key else client_auth
        return {"Authorization": auth} if auth else {}

    def _transport_error(self, e: Exception) -> ApiError:
        if isinstance(e, httpx.TimeoutException):
            what = "did not connect" if isinstance(e, httpx.ConnectTimeout) else f"sent nothing for {self.read_timeout:g}s"
            return upstream_error(f"upstream {self.base_url} {what} (--connect-timeout / --read-timeout)", timeout=True)
        if isinstance(e, httpx.ConnectError):
            return upstream_error(f"cannot reach upstream {self.base_url} (is it running?)")
        return upstream_error(f"upstream {self.base_url} failed: {type(e).__name__}: {e}"[:300])

    async def request(self, method: str, path: str, auth: str | None, body: Any = None) -> httpx.Response:
        """A whole small exchange (e.g. /v1/models); transport failures as ApiError."""
        try:
            return await self.client.request(method, path, json=body, headers=self.headers(auth))
        except httpx.HTTPError as e:
            raise self._transport_error(e) from None

    async def open(self, kind: str, body: dict[str, Any], auth: str | None) -> httpx.Response:
        """Send a generation request; the response once its headers are in and its status is fine."""
        path = PATHS[kind]
        req = self.client.build_request("POST", path, json=body, headers={**self.headers(auth), "Accept": "text/event-stream"})
        try:
            resp = await self.client.send(req, stream=True)
        except httpx.HTTPError as e:
            raise self._transport_error(e) from None
        if resp.status_code >= 400:
            try:
                raw = await self._read_some(resp)
            finally:
                await resp.aclose()
            msg = _error_message(raw) or resp.reason_phrase
            if 400 <= resp.status_code < 500 and resp.status_code not in (401, 403, 407, 429):
                raise ApiError(resp.status_code, f"upstream: {msg}", code="upstream_rejected")
            if resp.status_code == 429:
                raise ApiError(429, f"upstream is busy: {msg}", type="rate_limit_error", code="upstream_busy")
            raise upstream_error(f"upstream {self.base_url}{path}: HTTP {resp.status_code}: {msg}")
        return resp

    async def _read_some(self, resp: httpx.Response) -> bytes:
        buf = b""
        try:
            async for chunk in resp.aiter_raw():
                buf += chunk
                if len(buf) >= MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass
        return buf[:MAX_ERROR_BODY]

    async def pieces(self, resp: httpx.Response, kind: str, meta: ReplyMeta) -> AsyncIterator[str]:
        """The reply's text deltas; the response is closed when this ends, fails or is abandoned.
        A malformed, cut or error-carrying stream raises ApiError (502/504)."""
        try:
            ctype = resp.headers.get("content-type", "").lower()
            if ctype.startswith("application/json"):  # a server that ignored stream=true
                raw = await resp.aread()
                yield self._whole(raw, kind, meta)
                return
            dec, done = SseDecoder(), False
            async for chunk in resp.aiter_bytes():
                for data in dec.feed(chunk):
                    if data == "[DONE]":
                        done = True
                        break
                    piece = self._delta(data, kind, meta)
                    if piece:
                        yield piece
                if done:
                    break
            if not done:
                for data in dec.close():
                    if data == "[DONE]":
                        done = True
                        continue
                    piece = self._delta(data, kind, meta)
                    if piece:
                        yield piece
                if not done and meta.finish_reason is None:
                    raise upstream_error(f"upstream {self.base_url} closed the stream before the reply was complete")
        except MalformedStream as e:
            raise upstream_error(f"malformed stream from upstream {self.base_url}: {e}") from None
        except httpx.HTTPError as e:
            if isinstance(e, httpx.TimeoutException):
                raise self._transport_error(e) from None
            raise upstream_error(f"upstream {self.base_url} closed the connection mid-reply ({type(e).__name__})") from None
        finally:
            await asyncio.shield(resp.aclose())  # a second cancel must not leave the connection open

    def _whole(self, raw: bytes, kind: str, meta: ReplyMeta) -> str:
        try:
            obj = json.loads(raw)
            choice = obj["choices"][0]
            text = choice["message"].get("content") if kind == "chat" else choice["text"]
            if kind == "chat":
                meta.tool_calls = tool_calls.whole(choice["message"].get("tool_calls"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise upstream_error(f"upstream {self.base_url} answered JSON without a reply in choices[0]") from None
        meta.id, meta.model, meta.usage = obj.get("id"), obj.get("model"), obj.get("usage")
        meta.finish_reason = choice.get("finish_reason") or "stop"
        return text or ""

    def _delta(self, data: str, kind: str, meta: ReplyMeta) -> str:
        try:
            obj = json.loads(data)
        except ValueError:
            raise MalformedStream(f"event data is not JSON: {data[:80]!r}") from None
        if not isinstance(obj, dict):
            raise MalformedStream(f"event data is not an object: {data[:80]!r}")
        if obj.get("error"):
            raise MalformedStream(f"the upstream failed mid-stream: {_error_message(data.encode())}")
        choices = obj.get("choices")
        if not isinstance(choices, list):
            raise MalformedStream(f"event without choices: {data[:80]!r}")
        meta.id = meta.id or obj.get("id")
        meta.model = meta.model or obj.get("model")
        if isinstance(obj.get("usage"), dict):
            meta.usage = obj["usage"]
        if not choices:
            return ""
        choice = choices[0] if isinstance(choices[0], dict) else {}
        if choice.get("finish_reason"):
            meta.finish_reason = choice["finish_reason"]
        if kind == "chat":
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if calls is not None:
                try:
                    for part in calls if isinstance(calls, list) else [calls]:
                        tool_calls.merge(meta.tool_calls, part)
                except ValueError as e:
                    raise MalformedStream(f"{e}: {data[:80]!r}") from None
        else:
            text = choice.get("text")
        if text is not None and not isinstance(text, str):
            raise MalformedStream(f"reply text is not a string: {data[:80]!r}")
        return text or ""

    async def aclose(self) -> None:
        await self.client.aclose()
