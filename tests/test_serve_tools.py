"""Tool calls through `prism serve`: a real scripted upstream streams them as OpenAI-compatible
servers do, the official openai client reads what prism passes on, and a call whose arguments
the policy blocks never reaches the client."""

from __future__ import annotations

import json

import httpx
import pytest

from prism_cli.serve import tool_calls
from prism_cli.serve.app import Prism
from prism_cli.serve.limits import ServeOptions
from tests.scripted_upstream import Script, scripted_upstream
from tests.serve_helpers import client, rules_gate, serving

WORD = "dynamite"
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}}}}}]  # fmt: skip
WEATHER = {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})}
BLAST = {"name": "send_email", "arguments": json.dumps({"to": "x@example.org", "body": f"Buy {WORD} here"})}


@pytest.fixture(scope="module")
def up():
    with scripted_upstream() as u:
        yield u


@pytest.fixture
def url(up):
    prism = Prism(ServeOptions(upstream=up.url, read_timeout=5), rules_gate(WORD))
    with serving(prism) as u:
        yield u


def stream_calls(c) -> tuple[str, dict[int, dict], str | None]:
    """Text, tool calls joined by index as a client joins them, and the finish reason of a stream."""
    text, calls, finish = "", {}, None
    for ch in c.chat.completions.create(model="m", messages=USER, tools=TOOLS, stream=True):
        if not ch.choices:
            continue
        d = ch.choices[0].delta
        text += d.content or ""
        for t in d.tool_calls or []:
            call = calls.setdefault(t.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += t.id or ""
            call["name"] += (t.function and t.function.name) or ""
            call["arguments"] += (t.function and t.function.arguments) or ""
        finish = ch.choices[0].finish_reason or finish
    return text, calls, finish


def test_streamed_tool_calls_reach_the_client_whole_after_the_check(url, up):
    up.script = Script(tokens=["Let me check."], tool_calls=[WEATHER, {"name": "get_time", "arguments": "{}"}])
    text, calls, finish = stream_calls(client(url))
    assert text == "Let me check." and finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {})]
    assert [c["id"] for c in calls.values()] == ["call_0", "call_1"]  # the upstream's ids, kept
    assert up.last.body["tools"] == TOOLS  # the client's tools went upstream untouched


def test_whole_reply_carries_tool_calls_with_null_content(url, up):
    up.script = Script(tokens=[], tool_calls=[WEATHER])
    r = client(url).chat.completions.create(model="m", messages=USER, tools=TOOLS)
    m = r.choices[0]
    assert m.finish_reason == "tool_calls" and m.message.content is None
    assert [(t.id, t.function.name, t.function.arguments) for t in m.message.tool_calls] == [
        ("call_0", "get_weather", WEATHER["arguments"])]


def test_a_blocked_tool_call_never_reaches_the_client(url, up):
    up.script = Script(tokens=["Sending it now."], tool_calls=[WEATHER, BLAST])
    text, calls, finish = stream_calls(client(url))
    assert calls == {} and finish == "content_filter"  # neither call: they are judged together
    assert text.startswith("Sending it now.") and "tool call blocked by policy" in text
    assert WORD not in text
    r = client(url).chat.completions.create(model="m", messages=USER, tools=TOOLS)
    assert r.choices[0].finish_reason == "content_filter" and not r.choices[0].message.tool_calls


def test_malformed_tool_call_pieces_are_a_502(url, up):
    bad = b'data: {"id":"u","choices":[{"index":0,"delta":{"tool_calls":[{"index":"zero"}]}}]}\n\n'
    up.script = Script(garbage=bad)
    r = httpx.post(url + "/chat/completions", json={"model": "m", "messages": USER}, timeout=10)
    assert r.status_code == 502 and "bad index" in r.json()["error"]["message"]


def test_merge_joins_pieces_by_index_and_rejects_garbage():
    calls: list[dict] = []
    for part in ({"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
                 {"index": 1, "id": "b", "function": {"name": "g"}},
                 {"index": 0, "function": {"arguments": '{"x"'}}, {"index": 0, "function": {"arguments": ": 1}"}}):
        tool_calls.merge(calls, part)
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "f", '{"x": 1}'), ("b", "g", "")]
    assert tool_calls.text(calls) == 'f({"x": 1})\ng()'
    for bad in ("x", {"index": -1}, {"index": 999}, {"index": 0, "function": "f"}, {"index": 0, "id": 5},
                {"index": 0, "function": {"arguments": 3}}):
        with pytest.raises(ValueError):
            tool_calls.merge([], bad)
    assert tool_calls.finished([{"id": "", "type": "function", "function": {"name": "f", "arguments": ""}}])[0]["id"]
