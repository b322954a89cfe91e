"""The starlette app: routes, the api-key check, and one generation path shared by chat and completions.

A request is read (size-limited), admitted (429 when the queue is full), its prompt side checked
(a blocked prompt answers 400 `content_filter` and never goes upstream), then the reply flows
through StreamGate (relay.py) to the client as SSE or as one JSON object.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from prism_cli.gate import Gate
from prism_cli.serve import tool_calls
from prism_cli.serve.errors import ApiError
from prism_cli.serve.limits import Admission, ServeOptions
from prism_cli.serve.moderation import Moderation
from prism_cli.serve.openai_shape import moderation_response
from prism_cli.serve.relay import Cancelled, gated
from prism_cli.serve.requests import GenRequest, parse_generation, read_json, text_of, upstream_body
from prism_cli.serve.sse import DONE, EventStream, event


class Prism:
    """Everything the routes share: options, the moderation, the upstream or the local engine."""

    def __init__(self, opts: ServeOptions, gate: Gate, local: Any = None):
        self.opts = opts
        self.moderation = Moderation(gate, log_text=opts.log_text)
        self.local = local
        self.upstream: Any = None
        if local is None:
            from prism_cli.serve.upstream import Upstream

            assert opts.upstream, "an upstream URL or a local engine is needed"
            self.upstream = Upstream(opts.upstream, key=opts.upstream_key, connect_timeout=opts.connect_timeout,
                                     read_timeout=opts.read_timeout, max_connections=opts.slots + 4)  # fmt: skip
        slots = 1 if local is not None else opts.slots
        self.admission = Admission(slots, opts.queue)
        self.executor = ThreadPoolExecutor(max_workers=slots + 4, thread_name_prefix="prism-serve")
        self.shutting_down = threading.Event()
        self.started = time.time()
        self.loop: asyncio.AbstractEventLoop | None = None
        """The serving event loop (set at startup): tests count its tasks."""

    async def in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def client_auth(self, request: Request) -> str | None:
        """The client's Authorization goes upstream only when it is not prism's own key."""
        return None if self.opts.api_key else request.headers.get("authorization")

    async def close(self) -> None:
        self.shutting_down.set()
        if self.upstream is not None:
            await self.upstream.aclose()
        self.executor.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------- routes


async def health(request: Request) -> Response:
    p: Prism = request.app.state.prism
    a = p.admission
    return JSONResponse({"status": "ok", "policy": p.moderation.policy.name, "moderator": p.moderation.gate.name,
                         "mode": "local" if p.local is not None else "upstream", "active": a.active, "waiting": a.waiting})  # fmt: skip


async def models(request: Request) -> Response:
    p: Prism = request.app.state.prism
    if p.local is not None:
        return JSONResponse(p.local.models())
    resp = await p.upstream.request("GET", "/v1/models", p.client_auth(request))
    return Response(resp.content, resp.status_code, media_type=resp.headers.get("content-type", "application/json"))


async def moderations(request: Request) -> Response:
    p: Prism = request.app.state.prism
    body = await read_json(request, p.opts.max_body)
    raw = body.get("input")
    items = raw if isinstance(raw, list) else [raw]
    if not items or raw is None:
        raise ApiError(400, "input must be a string or a non-empty list of strings", code="invalid_value")
    if isinstance(raw, list) and all(isinstance(x, dict) for x in raw):
        texts = [text_of(raw, "input")]  # one multimodal input: its text parts together
    else:
        texts = [x if isinstance(x, str) else text_of(x, f"input[{i}]") for i, x in enumerate(items)]

    def check() -> list[Any]:
        verdicts = p.moderation.gate.check_batch(texts, "prompt", ids=[str(i) for i in range(len(texts))])
        for v, t in zip(verdicts, texts):
            p.moderation.log(v, t)
        return verdicts

    verdicts = await p.in_thread(check)
    model = body.get("model") if isinstance(body.get("model"), str) else p.moderation.gate.name
    return JSONResponse(moderation_response(verdicts, p.moderation.policy, model, f"modr-{uuid.uuid4().hex}"))


async def chat_completions(request: Request) -> Response:
    return await generate(request, "chat")


async def completions(request: Request) -> Response:
    return await generate(request, "completion")


# ---------------------------------------------------------------------- generation


async def generate(request: Request, kind: str) -> Response:
    p: Prism = request.app.state.prism
    req = parse_generation(await read_json(request, p.opts.max_body), kind)
    if p.local is not None and kind != "chat":
        raise ApiError(400, "in-process mode serves /v1/chat/completions only (use --upstream for /v1/completions)")
    release = await p.admission.enter()
    try:
        mod = p.moderation
        if kind == "chat":
            blocking = await p.in_thread(mod.check_conversation, req.messages)
            users = [m for m in req.messages if m["role"] == "user"]
            context = users[-1:]
        else:
            blocking = await p.in_thread(mod.check_prompt, req.prompt)
            context = [{"role": "user", "content": req.prompt}]
        if blocking is not None:
            raise ApiError(400, mod.refusal(blocking, "prompt"), code="content_filter",
                           extra={"innererror": {"code": "ResponsibleAIPolicyViolation", "prism": mod.verdict_summary(blocking)}})  # fmt: skip
        reply = Reply(p, req, context)
        if p.local is not None:
            events = gated(mod, p.executor, context, make_pieces=lambda: p.local.pieces(req), lock=p.local.lock,
                           shutting_down=p.shutting_down)  # fmt: skip
        else:
            from prism_cli.serve.upstream import ReplyMeta

            resp = await p.upstream.open(kind, upstream_body(req), p.client_auth(request))
            reply.meta = ReplyMeta()
            source = p.upstream.pieces(resp, kind, reply.meta)
            events = gated(mod, p.executor, context, source=source, shutting_down=p.shutting_down)
        if req.stream:
            stream = EventStream(reply.sse(events), on_end=release)
            release = None  # the stream owns the slot now
            return stream  # type: ignore[return-value]
        return JSONResponse(await reply.whole(events))
    finally:
        if release is not None:
            release()


class Reply:
    """One reply in the client's format: chunks as it streams, or the whole object at the end."""

    def __init__(self, p: Prism, req: GenRequest, context: list[dict[str, str]]):
        self.p, self.req, self.context = p, req, context
        self.id = ("chatcmpl-" if req.kind == "chat" else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.meta: Any = None

    @property
    def model(self) -> str:
        return (self.meta and self.meta.model) or self.req.model or (self.p.local.name if self.p.local else "prism")

    @property
    def calls(self) -> list[dict[str, Any]]:
        return self.meta.tool_calls if self.meta is not None else []

    async def blocking(self, sg: Any) -> Any:
        """The verdict that blocks the reply once it is over: StreamGate's, or that of its tool calls
        (checked whole, before any is sent); None when all of it may go to the client."""
        if sg.blocked:
            return sg.verdict
        if self.calls:
            return await self.p.in_thread(self.p.moderation.check_tool_calls, self.calls, self.context)
        return None

    def finish_reason(self, blocking: Any) -> str:
        if blocking is not None:
            return "content_filter"
        if self.p.local is not None:
            return self.p.local.finish_reason()
        return (self.meta and self.meta.finish_reason) or "stop"

    def usage(self) -> dict[str, Any] | None:
        return self.p.local.usage() if self.p.local is not None else (self.meta and self.meta.usage)

    def notice(self, sg: Any, blocking: Any) -> str:
        if blocking is None:
            return ""
        return f"\n\n[{self.p.moderation.refusal(blocking, 'response' if sg.blocked else 'tool call')}]"

    def chunk(self, text: str | None, finish: str | None = None, role: bool = False,
              calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        if self.req.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant"} if role else {}
            if text is not None:
                delta["content"] = text
            if calls:
                delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(calls)]
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
            obj = "chat.completion.chunk"
        else:
            choice, obj = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}, "text_completion"
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": [choice]}

    async def sse(self, events: Any) -> AsyncIterator[bytes]:
        try:
            if self.req.kind == "chat":
                yield event(self.chunk("", role=True))
            async for kind, value in events:
                if kind == "text":
                    yield event(self.chunk(value))
                elif kind == "done":
                    blocking = await self.blocking(value)
                    if self.calls and blocking is None:
                        yield event(self.chunk(None, calls=tool_calls.finished(self.calls)))
                    notice = self.notice(value, blocking)
                    yield event(self.chunk(notice or None, self.finish_reason(blocking)))
                    usage = self.usage()
                    if self.req.include_usage and usage:
                        yield event({**self.chunk(None), "choices": [], "usage": usage})
                    yield DONE
                else:
                    err = as_api_error(value)
                    if err is not None:  # headers are sent: the error travels as an event (the openai client raises it)
                        yield event(err.body())
        finally:
            await events.aclose()

    async def whole(self, events: Any) -> dict[str, Any]:
        parts: list[str] = []
        sg = None
        try:
            async for kind, value in events:
                if kind == "text":
                    parts.append(value)
                elif kind == "done":
                    sg = value
                else:
                    raise as_api_error(value) or ApiError(503, "prism is shutting down", type="server_error")
        finally:
            await events.aclose()
        assert sg is not None
        blocking = await self.blocking(sg)
        text = "".join(parts) + self.notice(sg, blocking)
        finish = self.finish_reason(blocking)
        if self.req.kind == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if self.calls and blocking is None:
                message.update(content=text or None, tool_calls=tool_calls.finished(self.calls))
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
            obj = "chat.completion"
        else:
            choice, obj = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}, "text_completion"
        out = {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": [choice]}
        usage = self.usage()
        if usage:
            out["usage"] = usage
        return out


def as_api_error(e: BaseException) -> ApiError | None:
    """What the client is told about a reply that failed (None: it left, tell nobody)."""
    from prism_cli.engines.base import EngineError

    if isinstance(e, (Cancelled, asyncio.CancelledError)):
        return None
    if isinstance(e, ApiError):
        return e
    if isinstance(e, EngineError):
        return ApiError(502, f"the model failed: {e}", type="server_error", code="engine_error")
    return ApiError(500, f"prism internal error: {type(e).__name__}", type="server_error")


# ---------------------------------------------------------------------- assembly


class RequireKey:
    """ASGI middleware: every request but /health carries the key (Bearer or x-api-key), compared in
    constant time. Without a configured key (loopback binds only) everything passes."""

    def __init__(self, app: Any, key: str | None):
        self.app = app
        self.key = key.encode("utf-8") if key else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.key is not None and scope["path"] != "/health":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"")
            token = auth[7:].strip() if auth[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
            if not hmac.compare_digest(token, self.key):
                err = ApiError(401, "a valid prism API key is needed (Authorization: Bearer KEY)", code="invalid_api_key")
                await JSONResponse(err.body(), 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), exc.status)


async def _internal(request: Request, exc: Exception) -> Response:
    return JSONResponse(ApiError(500, f"prism internal error: {type(exc).__name__}", type="server_error").body(), 500)


async def _not_found(request: Request, exc: Exception) -> Response:
    code = getattr(exc, "status_code", 404)
    err = ApiError(code, f"{request.method} {request.url.path}: not served by prism", code="not_found" if code == 404 else "method_not_allowed")
    return JSONResponse(err.body(), code)


def build_app(prism: Prism) -> Any:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        prism.loop = asyncio.get_running_loop()
        yield
        await prism.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/moderations", moderations, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ApiError: _api_error, 404: _not_found, 405: _not_found, Exception: _internal})  # fmt: skip
    app.state.prism = prism
    return RequireKey(app, prism.opts.api_key)
