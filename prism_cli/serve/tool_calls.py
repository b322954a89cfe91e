"""Tool calls in a reply: gathered from the upstream's stream, checked whole, then passed on.

OpenAI-compatible servers stream a tool call as pieces of one `delta.tool_calls[]` entry, matched
by `index`: the id, type and function name first, then the JSON arguments a few characters at a
time. An argument string is model output like any other (an email body, a shell command), so
prism collects the calls, checks their text as a response once the reply is over, and only then
sends them to the client, whole, in one chunk (clients join the pieces of a call by index, so one
piece is as good as many). A call that is blocked is never sent: the reply ends with
finish_reason "content_filter", as a blocked text does.
"""

from __future__ import annotations

import uuid
from typing import Any

MAX_CALLS = 128
"""More parallel calls than any model makes: an index past it is a malformed stream."""


def merge(calls: list[dict[str, Any]], part: Any) -> None:
    """Add one streamed `tool_calls` entry to the calls so far. Raises ValueError if malformed."""
    if not isinstance(part, dict):
        raise ValueError("a tool_calls entry is not an object")
    idx = part.get("index", len(calls) - 1 if calls and "id" not in part else len(calls))
    if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < MAX_CALLS:
        raise ValueError(f"a tool_calls entry has a bad index: {idx!r}")
    while len(calls) <= idx:
        calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[idx]
    fn = part.get("function") or {}
    if not isinstance(fn, dict):
        raise ValueError("a tool_calls entry's function is not an object")
    for key, value in (("id", part.get("id")), ("type", part.get("type"))):
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"a tool_calls entry's {key} is not a string")
            call[key] = value
    for key in ("name", "arguments"):
        value = fn.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"a tool_calls entry's function {key} is not a string")
            call["function"][key] += value


def whole(calls: Any) -> list[dict[str, Any]]:
    """The tool calls of a non-streamed reply (`message.tool_calls`), read as streamed ones are."""
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise ValueError("message.tool_calls is not a list")
    out: list[dict[str, Any]] = []
    for i, c in enumerate(calls):
        merge(out, {**c, "index": i} if isinstance(c, dict) else c)
    return out


def finished(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls as they go to the client: every one with an id (some servers send none)."""
    return [{**c, "id": c["id"] or f"call_{uuid.uuid4().hex[:24]}"} for c in calls]


def text(calls: list[dict[str, Any]]) -> str:
    """What moderation reads: each call as `name(arguments)`, one per line."""
    return "\n".join(f"{c['function']['name']}({c['function']['arguments']})" for c in calls)
