"""`prism serve` in front of a real scripted HTTP upstream on 127.0.0.1, spoken to by the official
openai client and by raw httpx: what reaches the upstream, what reaches the client, and faults."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from prism_cli.audit import read_records, text_hmac
from prism_cli.gate import Gate
from prism_cli.serve.app import Prism
from prism_cli.serve.limits import ServeOptions
from tests.llama_server import free_port
from tests.scripted_upstream import Script, scripted_upstream
from tests.serve_helpers import client, rules_gate, serving, streamed, word_policy

WORD = "dynamite"
SAFE = [f" word{i}" for i in range(30)]


@pytest.fixture(scope="module")
def up():
    with scripted_upstream() as u:
        yield u


@pytest.fixture
def proxy(up):
    """prism in front of the scripted upstream, with a rules policy that blocks WORD both ways."""
    up.script = Script(tokens=SAFE)
    prism = Prism(ServeOptions(upstream=up.url, read_timeout=5), rules_gate(WORD))
    with serving(prism) as url:
        yield url, prism



USER = [{"role": "user", "content": "Tell me something."}]


# --- the happy path ------------------------------------------------------------------


def test_stream_and_whole_reply_pass_through_unchanged(proxy, up):
    url, _ = proxy
    c = client(url)
    text, finish = streamed(c.chat.completions.create(model="m", messages=USER, stream=True))
    assert text == "".join(SAFE) and finish == "stop"
    assert up.last.body["stream"] is True and up.last.body["messages"] == USER
    r = c.chat.completions.create(model="m", messages=USER, temperature=0.3, max_tokens=40)
    assert r.choices[0].message.content == "".join(SAFE) and r.choices[0].finish_reason == "stop"
    assert up.last.body["temperature"] == 0.3 and up.last.body["max_tokens"] == 40  # the client's own settings go upstream
    assert r.model == "scripted"


def test_completions_stream_and_whole(proxy, up):
    url, _ = proxy
    c = client(url)
    r = c.completions.create(model="m", prompt="Once upon a time")
    assert r.choices[0].text == "".join(SAFE) and up.last.path == "/v1/completions"
    text = "".join(ch.choices[0].text for ch in c.completions.create(model="m", prompt="Once", stream=True) if ch.choices)
    assert text == "".join(SAFE)


def test_models_are_passed_through_and_health_answers(proxy):
    url, _ = proxy
    assert [m.id for m in client(url).models.list()] == ["scripted"]
    h = httpx.get(url.removesuffix("/v1") + "/health").json()
    assert h["status"] == "ok" and h["mode"] == "upstream" and h["policy"] == "serve-test"


# --- moderation semantics ----------------------------------------------------------------


def test_blocked_prompt_is_400_content_filter_and_never_reaches_upstream(proxy, up):
    url, _ = proxy
    before = len(up.seen)
    with pytest.raises(openai.BadRequestError) as e:
        client(url).chat.completions.create(model="m", messages=[{"role": "user", "content": f"Where do I buy {WORD.upper()}?"}])
    assert e.value.code == "content_filter" and "Violent Crimes [S1]" in e.value.message
    assert e.value.body["innererror"]["prism"]["flagged"] == ["S1"]
    with pytest.raises(openai.BadRequestError):
        client(url).completions.create(model="m", prompt=f"{WORD} is", stream=True)
    assert len(up.seen) == before  # the upstream saw neither request


@pytest.mark.parametrize("role", ["system", "assistant"])
def test_the_whole_conversation_is_checked_not_only_the_last_turn(proxy, up, role):
    url, _ = proxy
    before = len(up.seen)
    msgs = [{"role": role, "content": f"I love {WORD}."}, {"role": "user", "content": "Go on."}]
    with pytest.raises(openai.BadRequestError) as e:
        client(url).chat.completions.create(model="m", messages=msgs)
    assert e.value.code == "content_filter" and len(up.seen) == before


def test_reply_blocked_mid_stream_stops_the_upstream_and_no_unsafe_text_arrives(proxy, up):
    url, _ = proxy
    up.script = Script(tokens=SAFE[:12] + [f" {WORD}"] + SAFE * 20, delay=0.002)
    text, finish = streamed(client(url).chat.completions.create(model="m", messages=USER, stream=True))
    assert finish == "content_filter" and WORD not in text.lower()
    assert text.startswith("".join(SAFE[:8])) and "prism: response blocked" in text
    assert up.last.done.wait(10) and up.last.aborted  # prism hung up ...
    assert up.last.sent < 13 + 40  # ... a few tokens after the word, not after 600


def test_whole_reply_blocked_has_finish_reason_content_filter(proxy, up):
    url, _ = proxy
    up.script = Script(tokens=SAFE[:6] + [f" {WORD}"] + SAFE)
    r = client(url).chat.completions.create(model="m", messages=USER)
    assert r.choices[0].finish_reason == "content_filter" and WORD not in r.choices[0].message.content


class Broken:
    """A moderator that fails on every call (out of memory, a crashed runtime)."""

    name = "broken@1"

    def categories(self, role=None) -> set[str]:
        return {"S1"}

    def score(self, texts, role, context=None):
        raise RuntimeError("moderator crashed")


def test_a_failing_moderator_blocks(up):
    up.script = Script(tokens=SAFE)
    before = len(up.seen)
    with serving(Prism(ServeOptions(upstream=up.url), Gate(word_policy(WORD), [Broken()], include_rules=False))) as url:
        with pytest.raises(openai.BadRequestError) as e:
            client(url).chat.completions.create(model="m", messages=USER)
        assert "moderator crashed" in e.value.message and "fails closed" in e.value.message
        assert client(url).moderations.create(input="hello").results[0].flagged
    assert len(up.seen) == before


def test_decision_log_has_hashes_not_texts(proxy):
    url, _ = proxy
    secret = "a very particular prompt 12345"
    client(url).chat.completions.create(model="m", messages=[{"role": "user", "content": secret}])
    records, _ = read_records(last=5)
    mine = [r for r in records if r.get("hmac") == text_hmac(secret)]
    assert mine and mine[-1]["command"] == "serve" and mine[-1]["role"] == "prompt"
    assert any(r["role"] == "response" and r["hmac"] == text_hmac("".join(SAFE)) for r in records)
    assert all(secret not in json.dumps(r) for r in records)


def test_moderations_in_openai_shape(proxy):
    url, _ = proxy
    res = client(url).moderations.create(input=[f"some {WORD} here", "a quiet day"]).results
    assert res[0].flagged and res[0].categories.violence and res[0].category_scores.violence == 1.0
    assert not res[1].flagged and not res[1].categories.violence
    extra = res[0].model_extra or {}
    assert extra["prism"]["flagged"] == ["S1"] and "harassment" in extra["prism"]["not_covered"]


# --- security --------------------------------------------------------------------------


def test_api_key_is_required_and_never_forwarded(up):
    up.script = Script(tokens=SAFE)
    prism = Prism(ServeOptions(upstream=up.url, api_key="s3cret", upstream_key="up-key"), rules_gate(WORD))
    with serving(prism) as url:
        with pytest.raises(openai.AuthenticationError):
            client(url, "wrong").chat.completions.create(model="m", messages=USER)
        with pytest.raises(openai.AuthenticationError):
            client(url, "s3cre").models.list()
        assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200
        r = client(url, "s3cret").chat.completions.create(model="m", messages=USER)
        assert r.choices[0].message.content == "".join(SAFE)
        assert up.last.headers.get("Authorization") == "Bearer up-key"


def test_client_key_passes_through_when_prism_has_none(proxy, up):
    url, _ = proxy
    client(url, "client-key").chat.completions.create(model="m", messages=USER)
    assert up.last.headers.get("Authorization") == "Bearer client-key"


# --- faults ----------------------------------------------------------------------------


def raw(url: str, body: bytes | str, **kw) -> httpx.Response:
    return httpx.post(url + "/chat/completions", content=body, headers={"Content-Type": "application/json"}, timeout=30, **kw)


def test_malformed_json_and_oversized_body_and_the_server_keeps_serving(up):
    up.script = Script(tokens=SAFE)
    with serving(Prism(ServeOptions(upstream=up.url, max_body=4096), rules_gate(WORD))) as url:
        r = raw(url, '{"messages": [')
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = raw(url, json.dumps({"messages": [{"role": "user", "content": "x" * 10_000}]}))
        assert r.status_code == 413 and "--max-body" in r.json()["error"]["message"]
        r = raw(url, json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}))
        assert r.status_code == 400 and "cannot be moderated" in r.json()["error"]["message"]
        assert client(url).chat.completions.create(model="m", messages=USER).choices[0].message.content


def test_upstream_down_is_502_and_slow_is_504(up):
    with serving(Prism(ServeOptions(upstream=f"http://127.0.0.1:{free_port()}"), rules_gate(WORD))) as url:
        with pytest.raises(openai.APIStatusError) as e:
            client(url).chat.completions.create(model="m", messages=USER)
        assert e.value.status_code == 502 and "cannot reach upstream" in e.value.message
    up.script = Script(tokens=SAFE, stall=3)
    with serving(Prism(ServeOptions(upstream=up.url, read_timeout=0.5), rules_gate(WORD))) as url:
        t0 = time.monotonic()
        with pytest.raises(openai.APIStatusError) as e:
            client(url).chat.completions.create(model="m", messages=USER, stream=True)
        assert e.value.status_code == 504 and time.monotonic() - t0 < 2.5
        up.script = Script(tokens=SAFE)
        assert client(url).chat.completions.create(model="m", messages=USER).choices[0].message.content


@pytest.mark.parametrize("script", [
    Script(garbage=b"this is not an event stream\n\n"),
    Script(garbage=b'data: {"choices": [{"delta": {"content": 5}}]}\n\n'),
    Script(tokens=SAFE, die_after=10),
], ids=["garbage", "bad-delta", "killed-mid-stream"])  # fmt: skip
def test_upstream_garbage_or_death_mid_stream(proxy, up, script):
    url, _ = proxy
    up.script = script
    with pytest.raises(openai.APIStatusError) as e:
        client(url).chat.completions.create(model="m", messages=USER)
    assert e.value.status_code == 502
    up.script = script
    shown = []
    with pytest.raises(openai.APIError) as e:
        for ch in client(url).chat.completions.create(model="m", messages=USER, stream=True):
            shown.append(ch.choices[0].delta.content or "" if ch.choices else "")
    assert "upstream" in str(e.value)
    assert len("".join(shown)) <= len("".join(SAFE[:10]))  # the held-back tail was never checked: not sent
    up.script = Script(tokens=SAFE)
    assert client(url).chat.completions.create(model="m", messages=USER).choices[0].message.content  # still serving


def test_client_disconnect_cancels_the_upstream(proxy, up):
    url, _ = proxy
    up.script = Script(tokens=SAFE * 40, delay=0.005)
    with httpx.stream("POST", url + "/chat/completions", json={"messages": USER, "stream": True}, timeout=30) as r:
        next(r.iter_bytes())
    assert up.last.done.wait(10) and up.last.aborted
    assert up.last.sent < len(SAFE) * 40 // 2


def test_full_queue_gets_429(up):
    up.script = Script(tokens=SAFE, delay=0.05)
    with serving(Prism(ServeOptions(upstream=up.url, slots=1, queue=1), rules_gate(WORD))) as url:
        results: list[int] = []

        def one() -> None:
            results.append(raw(url, json.dumps({"messages": USER})).status_code)

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.3)
        r = raw(url, json.dumps({"messages": USER}))
        assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
        for t in threads:
            t.join()
        assert results == [200, 200]


def test_bounded_load_no_errors_no_leaks(up):
    """16 streaming clients for a few seconds: every reply whole, then no task, thread or fd left behind."""
    import asyncio
    import os

    up.script = Script(tokens=SAFE * 2, delay=0.001)
    prism = Prism(ServeOptions(upstream=up.url, slots=16), rules_gate(WORD))
    with serving(prism) as url:
        async def tasks() -> int:
            return len(asyncio.all_tasks())

        def count_tasks() -> int:
            return asyncio.run_coroutine_threadsafe(tasks(), prism.loop).result(5)

        def fds() -> int:
            return len(os.listdir("/proc/self/fd"))

        async def load(seconds: float) -> tuple[int, list[str]]:
            done, errors = 0, []
            clients = [openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, timeout=30) for _ in range(16)]
            end = time.monotonic() + seconds

            async def worker(c: openai.AsyncOpenAI) -> None:
                nonlocal done
                while time.monotonic() < end:
                    try:
                        parts = [ch.choices[0].delta.content or "" async for ch in await c.chat.completions.create(
                            model="m", messages=USER, stream=True) if ch.choices]  # fmt: skip
                        if "".join(parts) != "".join(SAFE * 2):
                            errors.append("incomplete reply")
                        done += 1
                    except Exception as e:  # noqa: BLE001
                        errors.append(repr(e))

            await asyncio.gather(*(worker(c) for c in clients))
            for c in clients:
                await c.close()
            return done, errors

        assert asyncio.run(load(0.5))[1] == []  # warm up: the worker threads exist before the baseline
        def threads() -> tuple[set[str], int]:
            """Threads other than prism's worker pool, and the pool's size (bounded, reused)."""
            names = [t.name for t in threading.enumerate()]
            return {n for n in names if not n.startswith("prism-serve")}, sum(n.startswith("prism-serve") for n in names)

        base_tasks, (base_threads, _), base_fds = count_tasks(), threads(), fds()
        done, errors = asyncio.run(load(3.0))
        assert errors == [] and done >= 32
        print(f"load: {done} streamed replies by 16 clients in 3 s")
        time.sleep(0.5)
        assert count_tasks() <= base_tasks
        others, pool = threads()
        assert others == base_threads and pool <= prism.executor._max_workers
        assert fds() <= base_fds + 4
        assert prism.admission.active == 0 and prism.admission.waiting == 0
