"""StreamGate on real token iterators (plain generators) with the real gate and rules moderator."""

from __future__ import annotations

import random
from typing import Sequence

from prism_cli.gate import Gate
from prism_cli.moderators.rules import RulesModerator, normalize
from prism_cli.policy import parse_policy
from prism_cli.stream_gate import BLOCKED, COMPLETE, INTERRUPTED, StreamGate
from prism_cli.verdict import Scores

POLICY = parse_policy(
    """\
name: stream-test
stream: {window: 4, holdback: 2}
categories:
  - id: weapons
    name: Weapons
    description: weapon parts
    rules: {keywords: [detonator, kill switch]}
  - id: rude
    name: Rude
    description: rude words
    action: warn
    rules: {keywords: [dang]}
""",
    "stream-test.yaml",
)


class Engine:
    """A token source that records what was pulled and whether it was closed, like an engine."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens = list(tokens)
        self.pulled = 0
        self.closed = False

    def stream(self):
        try:
            for t in self.tokens:
                self.pulled += 1
                yield t
        finally:
            self.closed = True


class Recording:
    """Allows everything and records each text it was asked about."""

    name = "recording@1"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def categories(self) -> set[str]:
        return {"weapons"}

    def score(self, texts, role, context=None) -> list[Scores]:
        self.seen.extend(texts)
        return [{"weapons": 0.0} for _ in texts]


class FailsOnSecondCall:
    name = "flaky@1"

    def __init__(self) -> None:
        self.calls = 0

    def categories(self) -> set[str]:
        return {"weapons"}

    def score(self, texts, role, context=None) -> list[Scores]:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("guard model crashed")
        return [{"weapons": 0.0} for _ in texts]


def rules_gate() -> Gate:
    return Gate(POLICY, [RulesModerator(POLICY)])


def run(gate: Gate, tokens: Sequence[str], **kw) -> tuple[StreamGate, Engine, list[str]]:
    eng = Engine(tokens)
    sg = StreamGate(gate, **kw)
    out = list(sg.run(eng.stream()))
    return sg, eng, out


def splits(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(3, len(text) // 2)))
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


def test_everything_allowed_is_released_in_order_after_the_final_check():
    tokens = ["All", " good", " here", ",", " nothing", " to", " see", "."]
    sg, eng, out = run(rules_gate(), tokens)
    assert "".join(out) == "".join(tokens) == sg.released
    assert sg.outcome == COMPLETE and not sg.verdict.blocked
    assert sg.checks == 3  # at 3 (holdback + 1: the first text), 4 and 8; the final check reuses 8's
    assert eng.closed and eng.pulled == len(tokens)


def test_release_never_passes_a_safe_check_and_keeps_the_holdback():
    mod = Recording()
    gate = Gate(POLICY, [mod], include_rules=False)
    tokens = [f" w{c}" for c in "abcdefghijk"]  # plain words: no variant differs from the text
    eng = Engine(tokens)
    sg = StreamGate(gate, window=3, holdback=2)
    released = ""
    for chunk in sg.run(eng.stream()):
        released += chunk
        checked = mod.seen[-1]
        assert checked.startswith(released)
        n_checked = eng.pulled
        if n_checked < len(tokens):  # a window check: the last 2 tokens (and the open word) stay held
            assert len(released) <= len("".join(tokens[: n_checked - 2]))
    assert released == "".join(tokens)
    assert len(mod.seen) == 4  # tokens 3, 6, 9 and the final text (11 tokens)


def test_keyword_split_anywhere_never_leaks_its_first_characters():
    text = "Take the red wire to the detonator and stop."
    start = text.index("detonator")
    rng = random.Random(5)
    tokenizations = [list(text), text.split(" "), *[splits(text, rng) for _ in range(30)]]
    tokenizations[1] = [w + " " for w in tokenizations[1][:-1]] + [tokenizations[1][-1]]
    for tokens in tokenizations:
        assert "".join(tokens) == text
        ends = [len("".join(tokens[: i + 1])) for i in range(len(tokens))]
        # the word is judged once it is finished: when the character after it has arrived
        done = next(i + 1 for i, e in enumerate(ends) if e > start + len("detonator"))
        for window in (1, 2, 3, 5, 8):
            for holdback in (0, 1, 3):
                sg, eng, out = run(rules_gate(), tokens, window=window, holdback=holdback)
                shown = "".join(out)
                assert sg.outcome == BLOCKED, (tokens, window, holdback)
                assert len(shown) <= start and "deto" not in shown
                assert shown == text[: len(shown)]
                # generation stopped at the first check that saw the whole word: checks come every
                # `window` tokens and once at holdback + 1 (the first point anything can be shown)
                checks = [n for n in range(1, len(tokens) + 1) if n % window == 0 or n == holdback + 1 < window]
                assert eng.closed and eng.pulled == next((n for n in checks if n >= done), len(tokens))
                assert sg.verdict.flagged == ["weapons"]


def test_multiword_keyword_is_held_from_its_first_word():
    tokens = ["Flip", " the", " kill", " sw", "itch", " now", " please"]
    sg, eng, out = run(rules_gate(), tokens, window=2, holdback=0)
    assert "".join(out) == "Flip the "
    assert sg.outcome == BLOCKED and eng.pulled == 6 and eng.closed


def test_fullwidth_keyword_is_caught_and_held():
    tokens = ["Use", " the", " ｄｅｔｏ", "ｎａｔｏｒ", " now"]
    sg, eng, out = run(rules_gate(), tokens, window=1, holdback=0)
    assert "".join(out) == "Use the "
    assert sg.blocked


def test_match_in_the_held_tail_is_caught_by_the_final_check():
    tokens = ["Here", " is", " the", " detonator"]
    sg, eng, out = run(rules_gate(), tokens, window=100, holdback=0)
    assert out == [] and sg.released == ""
    assert sg.blocked and sg.checks == 1 and eng.pulled == 4


def test_warn_lets_text_through_and_records_the_warning():
    tokens = ["Well", " dang", ",", " that", " is", " fine", "."]
    sg, eng, out = run(rules_gate(), tokens)
    assert "".join(out) == "Well dang, that is fine."
    assert sg.outcome == COMPLETE and sg.warnings and sg.warnings[0].flagged == ["rude"]


def test_moderator_failing_mid_stream_blocks_and_stops():
    mod = FailsOnSecondCall()
    gate = Gate(POLICY, [mod], include_rules=False)
    tokens = [f" t{i}" for i in range(20)]
    sg, eng, out = run(gate, tokens, window=4, holdback=1)
    assert sg.outcome == BLOCKED
    assert sg.verdict.error is not None and "guard model crashed" in sg.verdict.error
    assert "".join(out) == "".join(tokens[:1])  # only what the first (good) check, at token 2, approved
    assert eng.pulled == 4 and eng.closed  # the second check, at 4, failed: generation stopped there


def test_stop_request_closes_the_engine_and_drops_the_unchecked_tail():
    tokens = [f" x{i}" for i in range(30)]
    pulled = []
    sg = StreamGate(rules_gate(), window=4, holdback=2, should_stop=lambda: len(pulled) >= 10)
    eng = Engine(tokens)

    def counting():
        for t in eng.stream():
            pulled.append(t)
            yield t

    out = "".join(sg.run(counting()))
    assert sg.outcome == INTERRUPTED
    assert len(pulled) == 10 and out == "".join(tokens[:6])  # approved at token 8, minus holdback 2


def test_abandoning_the_stream_closes_the_engine():
    eng = Engine(["a "] * 40)
    it = StreamGate(rules_gate(), window=2, holdback=0).run(eng.stream())
    assert next(it) == "a "  # the first check comes at holdback + 1: the first token shows at once
    it.close()
    assert eng.closed and eng.pulled == 1


def test_safe_prefix_holds_unfinished_words_and_keyword_beginnings():
    sg = StreamGate(rules_gate())
    assert sg.safe_prefix("the deton") == len("the ")
    assert sg.safe_prefix("the end. ") == len("the end. ")
    assert sg.safe_prefix("we hit the kill ") == len("we hit the ")
    assert sg.safe_prefix("we hit the KILL S") == len("we hit the ")
    assert normalize("ＫＩＬＬ") == "kill"


def test_no_partial_word_is_ever_shown_even_when_it_would_match_alone():
    # "detonators" is allowed (not the whole word); a token boundary after "detonator" must not
    # flash the banned word on screen before "s" arrives. The later real match is blocked.
    rules = RulesModerator(POLICY)
    tokens = ["The", " detonator", "s", " are", " fine", " but", " the", " detonator", " is", " not", "."]
    for window in (1, 2, 3):
        for holdback in (0, 1, 2):
            eng = Engine(tokens)
            sg = StreamGate(rules_gate(), window=window, holdback=holdback)
            shown = ""
            for chunk in sg.run(eng.stream()):
                shown += chunk
                assert rules.first_match(shown, "response") is None, (window, holdback, shown)
            assert sg.blocked and eng.closed
            assert len(shown) <= len("The detonators are fine but the ")
            assert shown == "".join(tokens)[: len(shown)]


def test_rules_judge_finished_words_only():
    # Checked every token, "The detonator|s" must not be blocked as if "detonator" had ended.
    tokens = ["The", " detonator", "s", " are", " fine", " but", " the", " detonator", " is", " not", "."]
    sg, eng, out = run(rules_gate(), tokens, window=1, holdback=0)
    assert "".join(out) == "The detonators are fine but the "
    assert sg.blocked and eng.pulled == 9  # stopped as soon as the word was known to be finished


def test_text_without_spaces_is_still_released_while_streaming():
    tokens = ["字"] * 60  # CJK: one long run of word characters, longer than any keyword
    chunks = list(StreamGate(rules_gate(), window=4, holdback=1).run(Engine(tokens).stream()))
    assert "".join(chunks) == "字" * 60 and len(chunks) > 2


def test_the_first_text_shows_one_token_past_the_holdback_not_a_window_later():
    eng = Engine([f" w{i}" for i in range(40)])
    sg = StreamGate(rules_gate(), window=16, holdback=8)  # the default policy's cadence
    it = sg.run(eng.stream())
    assert next(it) == " w0" and eng.pulled == 9  # checked at token 9: token 1 is past the holdback
    assert next(it) == "".join(f" w{i}" for i in range(1, 8)) and eng.pulled == 16  # then every 16
    rest = "".join(it)
    assert sg.released == "".join(f" w{i}" for i in range(40)) and rest.endswith(" w39")
    assert sg.checks == 4  # 9, 16, 32, and the final one at 40
