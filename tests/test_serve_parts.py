"""The proxy's pure parts on bytes and dicts: SSE decoding, request reading, the OpenAI moderation shape."""

from __future__ import annotations

import pytest

from prism_cli.serve.errors import ApiError
from prism_cli.serve.openai_shape import OPENAI_KEYS, moderation_result
from prism_cli.serve.requests import parse_generation, upstream_body
from prism_cli.serve.sse import MAX_LINE, MalformedStream, SseDecoder
from prism_cli.policy_store import load_policy
from prism_cli.verdict import Decision, Verdict


def test_sse_events_split_anywhere_crlf_comments_and_a_last_event_without_blank_line():
    raw = b': ping\r\ndata: {"a":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]'
    for cut in range(len(raw)):
        dec = SseDecoder()
        got = dec.feed(raw[:cut]) + dec.feed(raw[cut:]) + dec.close()
        assert got == ['{"a":1}', "line1\nline2", "[DONE]"]


@pytest.mark.parametrize("raw,why", [
    (b"hello world\n\n", "unexpected line"),
    (b"error: out of memory\n", "failed mid-stream"),
    (b"data: \xff\xfe\n\n", "UTF-8"),
    (b"data: " + b"x" * (MAX_LINE + 10), "longer than"),
])  # fmt: skip
def test_sse_garbage_raises(raw, why):
    with pytest.raises(MalformedStream, match=why):
        SseDecoder().feed(raw)


def test_requests_prism_cannot_moderate_are_refused():
    for body, why in (
        ({"messages": []}, "non-empty"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "one choice"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "cannot be moderated"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ):
        with pytest.raises(ApiError, match=why) as e:
            parse_generation(body, "chat")
        assert e.value.status == 400
    with pytest.raises(ApiError, match="prompt"):
        parse_generation({"prompt": ["a", "b"]}, "completion")


def test_text_parts_are_joined_and_the_upstream_always_streams():
    req = parse_generation({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                            "stream_options": {"include_usage": True}}, "chat")  # fmt: skip
    assert req.messages == [{"role": "user", "content": "a\nb"}] and not req.stream
    assert upstream_body(req)["stream"] is True and upstream_body(req)["stream_options"] == {"include_usage": True}
    plain = parse_generation({"messages": [{"role": "user", "content": "x"}], "stream_options": {}}, "chat")
    assert "stream_options" not in upstream_body(plain)
    assert parse_generation({"prompt": ["one"]}, "completion").prompt == "one"


def test_moderation_shape_maps_policy_categories_and_names_what_is_not_covered():
    policy = load_policy("default")
    v = Verdict("0", "prompt", Decision.BLOCK, flagged=["S1", "S12"], scores={"S1": 0.9, "S12": 0.6, "S3": 0.2, "S10": 0.1}, unsafe=0.9)
    r = moderation_result(v, policy)
    assert r["flagged"] and r["categories"]["violence"] and r["categories"]["sexual"] and not r["categories"]["hate"]
    assert r["category_scores"]["sexual"] == 0.6 and r["category_scores"]["hate"] == 0.1  # max over S3, S12
    assert r["categories"]["S1"] and r["category_scores"]["S12"] == 0.6
    assert set(OPENAI_KEYS) <= set(r["categories"]) and "harassment" in r["prism"]["not_covered"]
    failed = Verdict("0", "prompt", Decision.BLOCK, error="moderator failed: boom")
    assert moderation_result(failed, policy)["flagged"] and moderation_result(failed, policy)["prism"]["error"]
