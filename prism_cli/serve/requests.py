"""What a client sends, read once and checked: the JSON body (size-limited), and the texts of a chat
or completion request that moderation must see. Anything prism cannot moderate is refused (400),
never passed on unchecked: image parts, several choices (n > 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from prism_cli.serve.errors import ApiError

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


async def read_json(request: Any, limit: int) -> dict[str, Any]:
    """The request body as a JSON object: 413 past `limit` bytes (read no further), 400 if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the {limit}-byte limit (--max-body)")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise ApiError(413, f"request body is over the {limit}-byte limit (--max-body)")
    try:
        obj = json.loads(bytes(buf).decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8") from None
    except ValueError as e:
        raise ApiError(400, f"request body is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "request body must be a JSON object")
    return obj


def text_of(content: Any, where: str) -> str:
    """A message's text: a string, or the text parts of a list. Other parts cannot be moderated."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text") and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ApiError(400, f"{where}[{i}]: a {kind!r} part cannot be moderated by prism (text only)")
        return "\n".join(texts)
    raise ApiError(400, f"{where}: content must be a string or a list of text parts")


@dataclass
class GenRequest:
    """One chat or completion request, as prism needs it; `body` is what goes upstream."""

    kind: str
    """"chat" or "completion"."""
    body: dict[str, Any]
    messages: list[dict[str, str]] = field(default_factory=list)
    """Chat: every message as {"role", "content"} text (what moderation checks, what a local engine sees)."""
    prompt: str = ""
    """Completion: the prompt text."""
    stream: bool = False
    model: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    include_usage: bool = False


def _number(body: dict[str, Any], key: str, kind: type, low: float) -> Any:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)) or v < low:
        raise ApiError(400, f"{key} must be a {'whole ' if kind is int else ''}number >= {low:g}, got {v!r}", code="invalid_value")
    return v


def parse_generation(body: dict[str, Any], kind: str) -> GenRequest:
    n = body.get("n", 1)
    if n not in (1, None):
        raise ApiError(400, "prism serve returns one choice per request (n must be 1)", code="invalid_value")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, f"stream must be true or false, got {stream!r}", code="invalid_value")
    opts = body.get("stream_options")
    req = GenRequest(
        kind, body, stream=stream,
        model=body.get("model") if isinstance(body.get("model"), str) else "",
        max_tokens=_number(body, "max_completion_tokens", int, 1) or _number(body, "max_tokens", int, 1),
        temperature=_number(body, "temperature", float, 0),
        seed=body.get("seed") if isinstance(body.get("seed"), int) else None,
        include_usage=bool(isinstance(opts, dict) and opts.get("include_usage")),
    )  # fmt: skip
    if kind == "chat":
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise ApiError(400, "messages must be a non-empty list", code="invalid_value")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise ApiError(400, f"messages[{i}]: an object with a role ({', '.join(sorted(ROLES))}) is needed")
            req.messages.append({"role": m["role"], "content": text_of(m.get("content"), f"messages[{i}].content")})
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise ApiError(400, "prompt must be a string (one prompt per request)", code="invalid_value")
        req.prompt = prompt
    return req


def upstream_body(req: GenRequest) -> dict[str, Any]:
    """The client's own request, streamed: prism reads every reply as it is made, to stop it early."""
    body = dict(req.body, stream=True)
    if not req.include_usage:
        body.pop("stream_options", None)
    return body
