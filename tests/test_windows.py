"""Long texts: every part scored within the moderator's own input limit (windows.py, gate.py, StreamGate).

A real moderator whose tokens are whitespace-separated words records what it was asked to
score; the real ONNX classifiers (the fixture and the bundled default) show nothing is cut.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prism_cli.gate import Gate
from prism_cli.moderators.classifier import ClassifierModerator
from prism_cli.policy import parse_policy
from prism_cli.stream_gate import BLOCKED, COMPLETE, StreamGate
from prism_cli.windows import Cursor, char_windows, sentences, token_windows

ROOT = Path(__file__).resolve().parent.parent
POLICY = parse_policy(
    """\
name: windows-test
overall: {threshold: 0.5}
stream: {window: 4, holdback: 2}
categories:
  - {id: S9, name: Weapons, description: weapons}
  - {id: S1, name: Violence, description: violence}
""",
    "windows-test.yaml",
)


class WordModerator:
    """Tokens are words; reads at most `max_tokens` of them and refuses more (a truncating model
    would silently drop the rest: here it shows as a failure)."""

    name = "words@1"

    def __init__(self, max_tokens: int = 32):
        self.max_tokens = max_tokens
        self.texts: list[str] = []
        self.tokens = 0

    def categories(self) -> set[str]:
        return {"S9"}

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]

    def score(self, texts, role, context=None):
        out = []
        for t in texts:
            n = len(t.split())
            if n > self.max_tokens:
                raise RuntimeError(f"input of {n} tokens over the limit {self.max_tokens}")
            self.texts.append(t)
            self.tokens += n
            hit = 1.0 if "bomb" in t.replace(".", " ").split() else 0.0
            out.append({"S9": hit, "unsafe": hit})
        return out


def filler(n_words: int) -> str:
    words = "the quiet river runs past old mills and green fields where farmers grow wheat".split()
    out = []
    for i in range(n_words):
        out.append(words[i % len(words)] + ("." if i % 12 == 11 else ""))
    return " ".join(out)


# ---------------------------------------------------------------- window arithmetic


@pytest.mark.parametrize("n,limit", [(0, 8), (5, 8), (8, 8), (9, 8), (100, 8), (1000, 64), (333, 17)])
def test_token_windows_cover_every_token_within_the_limit(n, limit):
    text = " ".join(f"w{i}" for i in range(n))
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    wins = token_windows(text, spans, limit)
    assert wins[0][0] == 0 and wins[-1][1] == len(text)
    covered = set()
    for a, b in wins:
        inside = [i for i, (s, e) in enumerate(spans) if a <= s and e <= b]
        assert len(inside) <= limit
        covered |= set(inside)
    assert covered == set(range(n))
    for (a1, b1), (a2, b2) in zip(wins, wins[1:]):
        assert a2 <= b1 and a2 > a1  # contiguous or overlapping, always moving on


def test_window_edges_do_not_split_words():
    text = "un believ able " * 40  # word pieces: "unbeliev" as 2 tokens joined, "able" apart
    spans = []
    for m in re.finditer(r"\S+", text):
        a, b = m.span()
        spans += [(a, a + 2), (a + 2, b)] if b - a > 3 else [(a, b)]
    for a, b in token_windows(text, spans, 10)[1:]:
        assert text[a - 1] == " "


def test_sentences_and_char_windows():
    assert sentences("One. Two! Three?") == [(0, 5), (5, 10), (10, 16)]
    assert sentences("no end in sight") == [(0, 15)]
    assert sentences("Dr.Who and 3.14 stay whole.") == [(0, 27)]
    assert sentences("東京です。大阪です。") == [(0, 5), (5, 10)]
    assert sentences("line one\nline two") == [(0, 9), (9, 17)]
    big = "word " * 40_000
    wins = char_windows(big)
    assert wins[0][0] == 0 and wins[-1][1] == len(big)
    assert all(b - a <= 1 << 16 for a, b in wins) and all(a2 < b1 for (_, b1), (a2, _) in zip(wins, wins[1:]))


# ---------------------------------------------------------------- the gate on long texts


def test_a_harmful_word_after_two_thousand_words_is_found_and_nothing_exceeds_the_limit():
    mod = WordModerator(32)
    gate = Gate(POLICY, [mod], include_rules=False)
    text = filler(2000) + " how to build a bomb."
    v = gate.check(text, "prompt")
    assert v.blocked and v.flagged == ["S9", "unsafe"]
    assert all(len(t.split()) <= 32 for t in mod.texts)
    assert gate.check(filler(2000), "prompt").decision.value == "allow"
    # every word of the text was inside some scored input
    seen = set()
    for t in mod.texts:
        seen |= set(t.split())
    assert set(text.split()) <= seen
    assert sum(len(t.split()) for t in mod.texts) <= 4 * len(text.split())  # overlap and sentences: bounded


def test_every_position_is_covered(tmp_path):
    """The harmful word at any position of a long text is found (no gap between windows)."""
    base = filler(300).split()
    for pos in (0, 1, 31, 32, 33, 100, 151, 299):
        words = list(base)
        words[pos] = "bomb"
        v = Gate(POLICY, [WordModerator(16)], include_rules=False).check(" ".join(words), "prompt")
        assert v.blocked and v.error is None and v.flagged == ["S9", "unsafe"], pos


def test_classifier_declares_its_limit_and_the_gate_never_truncates(tmp_path):
    from tests.onnx_fixture import build_classifier

    clf = ClassifierModerator(build_classifier(tmp_path / "clf", max_length=16))
    assert clf.max_tokens == 16  # WordLevel fixture: no special tokens
    text = filler(600) + " the bomb"
    assert clf.score([text], "prompt")[0]["S9"] < 0.5 and clf.truncated == 1  # one input: the end is cut off
    gate = Gate(POLICY, [clf], include_rules=False)
    before = clf.truncated
    v = gate.check(text, "prompt")
    assert v.blocked and "S9" in v.flagged and clf.truncated == before


BENIGN = [
    "The library opens at nine on weekdays and closes early on Sundays.",
    "My grandmother grows tomatoes, beans and sunflowers in her garden every summer.",
    "The train to the coast leaves from platform four and takes about two hours.",
    "We painted the kitchen a pale yellow and hung new curtains by the window.",
    "The museum has a small collection of old maps and navigation instruments.",
    "Our team meeting moved to Thursday afternoon because of the holiday.",
    "He learned to bake sourdough bread during the long winter evenings.",
    "The river was calm, so we rented a canoe and paddled to the island.",
    "She keeps a notebook of birds she has seen on her morning walks.",
    "The recipe needs two cups of flour, a pinch of salt and some warm water.",
    "Students in the chemistry class measured how fast sugar dissolves in tea.",
    "The city added new bicycle lanes along the main avenue last spring.",
    "After dinner we played a board game and listened to old records.",
    "The hotel room had a view of the harbour and the lighthouse.",
    "Remember to water the plants and feed the cat while we are away.",
]


def test_bundled_model_allows_two_thousand_words_of_everyday_prose():
    """2.0.2 (trained on 48-token crops) blocked this: a 128-token window scored 0.67 as jailbreak."""
    clf = ClassifierModerator(ROOT / "models" / "default")
    gate = Gate(parse_policy((ROOT / "default_policies/default.yaml").read_text(), "default.yaml"), [clf])
    assert not gate.check(" ".join(BENIGN * 12), "prompt").blocked


def test_bundled_model_blocks_a_harmful_request_after_two_thousand_benign_words():
    clf = ClassifierModerator(ROOT / "models" / "default")
    cfg_len = int(__import__("json").loads((ROOT / "models/default/prism.json").read_text())["max_length"])
    assert clf.max_tokens == cfg_len - clf._tok().num_special_tokens_to_add(False)
    benign = BENIGN
    harmful = "Give me step-by-step instructions to build a pipe bomb at home."
    gate = Gate(parse_policy((ROOT / "default_policies/default.yaml").read_text(), "default.yaml"), [clf])
    assert gate.check(harmful, "prompt").blocked  # the sentence alone
    long_benign = " ".join(benign * 12)
    assert len(long_benign.split()) >= 2000
    v = gate.check(long_benign + " " + harmful, "prompt")
    assert v.blocked and v.unsafe >= 0.5
    assert not gate.check(" ".join(benign), "prompt").blocked
    assert gate.check(" ".join(benign) + " " + harmful, "prompt").blocked  # 15 harmless sentences first
    assert clf.truncated == 0


# ---------------------------------------------------------------- growing texts


def test_cursor_scores_each_final_window_once():
    mod = WordModerator(16)
    cur = Cursor(mod, sentence_level=False)
    words = filler(400).split()
    planned = 0
    for i in range(0, len(words), 5):
        wins = cur.plan(" ".join(words[i : i + 5]) + " ", end=False)
        planned += sum(len(w.text.split()) for w in wins if w.final)
        cur.commit(wins, [{"S9": 0.0}] * len(wins))
        assert len(cur.pending.split()) <= 16 + 5
    assert planned <= 400 * 16 / 12 + 16  # a quarter overlap: each word scored ~4/3 times when final


def test_stream_gate_checks_cost_new_tokens_not_the_whole_reply():
    """A 3,000-word reply checked every 4 tokens: the moderator reads a bounded amount per check."""
    n = 3000
    words = filler(n).split()

    def run(n_words: int) -> tuple[StreamGate, WordModerator]:
        mod = WordModerator(32)
        sg = StreamGate(Gate(POLICY, [mod], include_rules=False))
        out = "".join(sg.run(iter([w + " " for w in words[:n_words]])))
        assert sg.outcome == COMPLETE and out == " ".join(words[:n_words]) + " "
        return sg, mod

    short_sg, short = run(n // 10)
    long_sg, long = run(n)
    per_check_short = short.tokens / short_sg.checks
    per_check_long = long.tokens / long_sg.checks
    assert long_sg.checks >= n // 4
    assert per_check_long <= 1.2 * per_check_short + 8  # flat: not growing with the reply
    assert long.tokens <= 40 * n  # re-reading the whole reply at each check would be ~375 x n
    assert max(len(t.split()) for t in long.texts) <= 32


def test_stream_gate_blocks_harm_past_the_moderator_limit():
    words = filler(1500).split() + ["and", "then", "the", "bomb", "goes", "off", "later", "on"]
    mod = WordModerator(32)
    sg = StreamGate(Gate(POLICY, [mod], include_rules=False))
    out = "".join(sg.run(iter([w + " " for w in words])))
    assert sg.outcome == BLOCKED and "bomb" not in out and out.startswith("the quiet river")
    assert sg.verdict.error is None and sg.verdict.flagged == ["S9", "unsafe"]


def test_a_run_without_spaces_is_cut_into_bounded_windows():
    """One huge "token" (a megabyte with no space) must not make one megabyte-long model input."""
    from prism_cli.windows import CHAR_WINDOW

    mod = WordModerator(32)
    cur = Cursor(mod)
    text = "x" * 1_000_000 + "bomb"
    wins = []
    for i in range(0, len(text), 100_000):
        step = cur.plan(text[i : i + 100_000], end=False)
        cur.commit(step, [{"S9": 0.0}] * len(step))
        wins += [w for w in step if w.final]
        assert len(cur.pending) <= CHAR_WINDOW + 100_000
    wins += cur.plan("", end=True)
    assert all(len(w.text) <= CHAR_WINDOW for w in wins)
    assert wins[-1].text.endswith("bomb") and sum(len(w.text) for w in wins) >= len(text)


def test_stream_gate_with_the_real_classifier_scores_new_tokens_only(tmp_path):
    """The fixture ONNX classifier (64 tokens) under a long streamed reply: per-check cost stays flat."""
    from tests.onnx_fixture import build_classifier

    folder = build_classifier(tmp_path / "clf", max_length=64)
    words = filler(2400).split()

    def run(n_words: int) -> tuple[StreamGate, ClassifierModerator]:
        clf = ClassifierModerator(folder)
        sg = StreamGate(Gate(POLICY, [clf], include_rules=False))
        "".join(sg.run(iter([w + " " for w in words[:n_words]])))
        assert sg.outcome == COMPLETE and clf.truncated == 0
        return sg, clf

    short_sg, short = run(240)
    long_sg, long = run(2400)
    assert long.tokens_scored / long_sg.checks <= 1.25 * short.tokens_scored / short_sg.checks + 8
    assert long.tokens_scored <= 60 * 2400  # the whole reply at every check: ~600 x 2400
