"""Why a text was flagged: the categories over their thresholds and the span of the text that drove them.

Spans are found by occlusion: copies of the text with one part removed are scored together in
one batch through the same gate (windows, normalized variants, rules: everything the verdict
saw), and the part whose removal lowers the flagged score most is the reason. A long text is
narrowed first (sentences, or chunks of words, MAX_PIECES at a time), then searched for the
shortest run of up to MAX_SPAN_WORDS words that explains most of the drop. When removing no
single part lowers the score (the flagged content repeats), the part that scores highest on
its own is reported instead.

Occlusion costs a batch of copies: ~45 for a short prompt, 10-20x one classifier check in time
(bench/bench_explain.py: ~0.1 s; a 224-word document ~1.7 s). It runs only within a time budget estimated from one check, so
with a slow guard model it falls back to sentences, or to the guard's category codes alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from prism_cli.moderators.base import Message
from prism_cli.policy import OVERALL
from prism_cli.verdict import ALLOWLISTED, Scores, Verdict
from prism_cli.windows import sentences

MAX_PIECES = 8
"""Parts per narrowing step of a long text."""
MAX_WORDS = 40
"""A part this short (in words) is searched word by word."""
MAX_SPAN_WORDS = 4
"""Widest run of words tried as one span."""
BUDGET_MS = 3000.0
"""Default time allowed for occlusion, estimated as (checks) x (one check's time)."""
MIN_DROP = 0.02
"""A removal that lowers a score by less than this explains nothing."""
SHORTEST_SHARE = 0.8
"""The shortest span whose drop reaches this share of the largest drop is the one reported."""
SECONDARY_DROP = 0.3
"""A category other than the lead gets a span of its own only when removing it crosses the threshold
or lowers the score this much."""
NEAREST = 3
"""Categories under their threshold shown for context, highest first."""

_WORD = re.compile(r"\S+")
Span_ = tuple[int, int]


@dataclass
class Reason:
    """One policy category (or the overall score) as the policy read it."""

    id: str
    name: str
    score: float
    threshold: float
    action: str
    fired: bool
    codes: list[str] = field(default_factory=list)
    """The guard model's own category codes feeding this category (e.g. Llama Guard's S9)."""

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "name": self.name, "score": round(self.score, 6), "threshold": self.threshold,
             "action": self.action, "fired": self.fired}
        if self.codes:
            d["codes"] = list(self.codes)
        return d


@dataclass
class Span:
    """A part of the text (character offsets) and what the category scored without it."""

    start: int
    end: int
    text: str
    category: str
    score: float
    without: float
    scope: str = "text"
    """What was scored with and without the span: the whole "text", or the "part" (sentence) holding it."""

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "category": self.category,
                "score": round(self.score, 6), "without": round(self.without, 6), "scope": self.scope}


@dataclass
class Explanation:
    text: str
    role: str
    decision: str
    """The verdict's decision (an allow-listed text: allow)."""
    policy_decision: str
    """What the policy alone decides, allow-list aside."""
    allowlisted: bool
    reasons: list[Reason]
    spans: list[Span]
    method: str
    """"words", "parts" (sentences, or chunks of words), "codes" (a guard's category codes) or "none"."""
    checks: int
    ms: float
    moderator: str
    policy: str
    note: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "decision": self.decision, "policy_decision": self.policy_decision, "allowlisted": self.allowlisted,
            "categories": [r.to_dict() for r in self.reasons], "spans": [s.to_dict() for s in self.spans],
            "method": self.method, "checks": self.checks, "ms": round(self.ms, 3),
        }
        if self.note:
            d["note"] = self.note
        if self.error:
            d["error"] = self.error
        return d


class _Failed(Exception):
    pass


def _scores(v: Verdict) -> Scores:
    return {**v.scores, OVERALL: v.unsafe}


def _batch(gate: Any, texts: Sequence[str], role: str, context: Sequence[Message] | None) -> list[Scores]:
    out = []
    for v in gate.check_batch(list(texts), role, context=context):  # type: ignore[arg-type]
        if v.error is not None:
            raise _Failed(v.error)
        out.append(_scores(v))
    return out


def _cut(text: str, a: int, b: int) -> str:
    """The text without [a, b), the words around the gap joined by one space."""
    left, right = text[:a].rstrip(), text[b:].lstrip()
    return left + (" " if left and right else "") + right


def _words(text: str, a: int, b: int) -> list[Span_]:
    """Word offsets within [a, b) of the text."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text, a, b)]


def _pieces(text: str, a: int, b: int) -> list[Span_]:
    """About MAX_PIECES consecutive parts of [a, b): its sentences (grouped when there are more), else
    half-overlapping chunks of its words, so a phrase cut by one chunk's edge lies whole in the next."""
    units = [(a + s, a + e) for s, e in sentences(text[a:b])]
    if len(units) >= 2:
        k = -(-len(units) // MAX_PIECES)
        return [(units[i][0], units[min(i + k, len(units)) - 1][1]) for i in range(0, len(units), k)]
    ws = _words(text, a, b)
    k = max(-(-2 * len(ws) // MAX_PIECES), MAX_WORDS // 2)
    starts = list(range(0, max(len(ws) - k, 0) + 1, max(1, k // 2)))
    if starts[-1] + k < len(ws):
        starts.append(len(ws) - k)
    return [(ws[i][0], ws[min(i + k, len(ws)) - 1][1]) for i in starts]


def _policy_reasons(gate: Any, role: str, scores: Scores, fired: list[str]) -> list[Reason]:
    pol = gate.policy
    out: list[Reason] = []
    for c in pol.active(role):
        if c.id in scores:
            out.append(Reason(c.id, c.name, scores[c.id], c.threshold, c.action, c.id in fired, _codes(gate, role, c.id)))
    o = pol.overall
    if o is not None and role in o.applies_to:
        out.append(Reason(OVERALL, pol.label(OVERALL), scores.get(OVERALL, 0.0), o.threshold, o.action, OVERALL in fired))
    out.sort(key=lambda r: (not r.fired, r.fired and r.id == OVERALL, -r.score / max(r.threshold, 1e-9)))
    n_fired = sum(r.fired for r in out)
    return out[: n_fired + NEAREST]


def _codes(gate: Any, role: str, cat: str) -> list[str]:
    """A guard model's labels feeding `cat` (found through cascades); [] for classifiers and rules."""
    todo, out = list(gate.moderators), []
    while todo:
        m = todo.pop(0)
        todo += [x for x in (getattr(m, "first", None), getattr(m, "second", None)) if x is not None]
        if hasattr(m, "format") and callable(getattr(m, "plan", None)):
            try:
                labels = m.plan(role).labels
            except Exception:  # noqa: BLE001 - an explanation never fails on a model's metadata
                continue
            out += [lab for lab, ids in labels.items() if cat in ids and lab not in out]
    return out


class _Budget:
    """Time for occlusion. A batch's cost is estimated from the characters it sends, at the rate the
    last batch ran (at first: one check of the whole text, which ignores the gate's de-duplication of
    windows shared by the copies, so it errs slow); a batch that would overrun is not started."""

    def __init__(self, text_len: int, check_ms: float, budget_ms: float):
        self.rate = max(check_ms, 0.05) / max(text_len, 1)
        self.left = self.total = budget_ms
        self.checks = 0

    def run(self, gate: Any, texts: list[str], role: str, context: Sequence[Message] | None) -> list[Scores] | None:
        chars = sum(len(t) for t in texts)
        if chars * self.rate > self.left:
            return None
        t0 = time.perf_counter()
        got = _batch(gate, texts, role, context)
        ms = (time.perf_counter() - t0) * 1000
        self.left -= ms
        if len(texts) >= 4:  # one short text's time is mostly per-call overhead: not a rate
            self.rate = max(ms, 0.05) / max(chars, 1)
        self.checks += len(texts)
        return got


def explain(
    gate: Any,
    text: str,
    role: str,
    context: Sequence[Message] | None = None,
    budget_ms: float = BUDGET_MS,
) -> Explanation:
    """Explain the gate's verdict on `text` (re-checked here, so the spans and the scores agree)."""
    t0 = time.perf_counter()
    base = gate.check(text, role, context=context)  # type: ignore[arg-type]
    ex = from_verdict(gate, base, text)
    ex.checks = 1
    if base.error is not None:
        ex.ms = (time.perf_counter() - t0) * 1000
        return ex
    targets = sorted([r for r in ex.reasons if r.fired] or ex.reasons[:1],
                     key=lambda r: (r.id == OVERALL, -r.score / max(r.threshold, 1e-9)))  # a named category leads
    if targets and targets[0].score >= MIN_DROP:
        budget = _Budget(len(text), base.ms, budget_ms)
        try:
            ex.spans, ex.method, note = _occlude(gate, text, role, context, targets, budget)
            ex.note = _join(ex.note, note) if note else ex.note
        except _Failed as e:
            ex.note = _join(ex.note, f"spans not searched: the moderator failed on a copy ({e})")
        ex.checks += budget.checks
        if ex.method == "none" and any(r.codes for r in targets):
            ex.method = "codes"
    ex.ms = (time.perf_counter() - t0) * 1000
    return ex


def from_verdict(gate: Any, verdict: Verdict, text: str = "") -> Explanation:
    """The categories of a verdict against the gate's policy, with no check and no span search:
    what /why can say about a reply that was withheld (its text must not be shown)."""
    ex = Explanation(text, verdict.role, verdict.decision.value, verdict.decision.value,
                     bool(verdict.extra.get(ALLOWLISTED)), [], [], "none", 0, 0.0, verdict.moderator, verdict.policy)
    if verdict.error is not None:
        ex.error, ex.note = verdict.error, "the moderator failed, so the text counts as blocked (prism fails closed)"
        return ex
    scores = _scores(verdict)
    decision, fired, _ = gate.decide(scores, verdict.role)
    ex.policy_decision = decision.value
    ex.reasons = _policy_reasons(gate, verdict.role, scores, fired)
    if any(r.codes for r in ex.reasons):
        ex.method = "codes"
    return ex


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b


def _occlude(
    gate: Any, text: str, role: str, context: Sequence[Message] | None, targets: list[Reason], budget: _Budget
) -> tuple[list[Span], str, str | None]:
    """(spans, method, note): narrow a long text to one part, then search runs of its words."""
    lead = targets[0].id
    base = {r.id: r.score for r in targets}
    region, spans, method, repeated = (0, len(text)), [], "none", False
    over = f"the search stopped at its {budget.total / 1000:g} s time budget"
    while len(_words(text, *region)) > MAX_WORDS or len(sentences(text[region[0]:region[1]])) > 1:
        parts = _pieces(text, *region)
        if len(parts) < 2:
            break
        got = budget.run(gate, [_cut(text, s, e) for s, e in parts] + [text[s:e] for s, e in parts], role, context)
        if got is None:
            return spans, method, (f"{over}: parts not narrowed further" if spans else f"spans not searched: {over}")
        drops = [base[lead] - got[i].get(lead, 0.0) for i in range(len(parts))]
        i = max(range(len(parts)), key=drops.__getitem__)
        if drops[i] < max(MIN_DROP, 0.25 * base[lead]) and got[i].get(lead, 0.0) >= targets[0].threshold:
            i, repeated = max(range(len(parts)), key=lambda j: got[len(parts) + j].get(lead, 0.0)), True
        s, e = parts[i]
        e = len(text[:e].rstrip())
        spans = [Span(s, e, text[s:e], lead, base[lead], got[i].get(lead, 0.0))]
        method, region = "parts", parts[i]
    note = "removing no single part lowers the score (the flagged content repeats): the part scoring highest " \
           "on its own is shown" if repeated else None
    found = _search_words(gate, text, role, context, targets, budget, region, base)
    if found is None:
        return spans, method, _join(note, f"{over}: words not searched") if spans else f"spans not searched: {over}"
    if not found:
        return spans, method, note or (None if spans else "no single part explains the score: it comes from the text as a whole")
    return found, "words", note


def _search_words(
    gate: Any, text: str, role: str, context: Sequence[Message] | None, targets: list[Reason], budget: _Budget,
    region: Span_, base: dict[str, float],
) -> list[Span] | None:
    """The shortest run of words in `region` that explains most of each target's score (None: over budget).

    Copies are cut from the region alone when it reproduces the lead score (cheap for a long text),
    else from the whole text."""
    a, b = region
    local, offset = text, 0
    if region != (0, len(text)):
        got = budget.run(gate, [text[a:b]], role, context)
        if got is None:
            return None
        lead = targets[0]
        if got[0].get(lead.id, 0.0) >= min(lead.threshold, 0.9 * base[lead.id]):
            local, offset = text[a:b], a
            base = {r.id: got[0].get(r.id, 0.0) for r in targets}
    ws = [(s - offset, e - offset) for s, e in _words(text, a, b)]
    runs = [(i, w) for w in range(1, min(MAX_SPAN_WORDS, len(ws)) + 1) for i in range(len(ws) - w + 1)]
    got = budget.run(gate, [_cut(local, ws[i][0], ws[i + w - 1][1]) for i, w in runs], role, context) if runs else []
    if got is None:
        return None
    spans: list[Span] = []
    for n, r in enumerate(targets):
        drops = [base[r.id] - g.get(r.id, 0.0) for g in got]
        best = max(drops, default=0.0)
        if best < MIN_DROP:
            continue
        k = min((j for j in range(len(runs)) if drops[j] >= SHORTEST_SHARE * best), key=lambda j: (runs[j][1], -drops[j]))
        i, w = runs[k]
        s, e = ws[i][0] + offset, ws[i + w - 1][1] + offset
        span = Span(s, e, text[s:e], r.id, base[r.id], got[k].get(r.id, 0.0), "part" if offset or local is not text else "text")
        if n and spans and (span.without >= r.threshold and best < SECONDARY_DROP):
            continue  # another category's weak echo of the lead span: noise
        if all((x.start, x.end) != (s, e) for x in spans):
            spans.append(span)
    return spans


# ---------------------------------------------------------------- terminal rendering

CONTEXT_CHARS = 60


def _excerpt(text: str, s: Span) -> str:
    """The span in its surroundings, marked »like this«, on one line."""
    a, b = max(0, s.start - CONTEXT_CHARS), min(len(text), s.end + CONTEXT_CHARS)
    pre = ("…" if a > 0 else "") + text[a : s.start]
    post = text[s.end : b] + ("…" if b < len(text) else "")
    return " ".join(f"{pre}»{text[s.start:s.end]}«{post}".split())


def render(ex: Explanation) -> str:
    """The explanation as a few plain lines for a terminal (the REPL's /why, `check --explain`)."""
    head = f"why: {ex.decision}"
    if ex.allowlisted:
        head += f" (allow-listed; the policy alone would {ex.policy_decision})"
    lines = [f"{head} · policy {ex.policy} · {ex.moderator}"]
    if ex.error:
        lines.append(f"  {ex.error}")
    width = max((len(_label(r)) for r in ex.reasons), default=0)
    for r in ex.reasons:
        mark, cmp = ("✗", "≥") if r.fired else ("·", "<")
        tail = f"  {r.action}" if r.fired else ""
        codes = f"  (guard codes {', '.join(r.codes)})" if r.codes else ""
        lines.append(f"  {mark} {_label(r):<{width}}  {r.score:.2f} {cmp} {r.threshold:.2f}{tail}{codes}")
    names = {r.id: _label(r) for r in ex.reasons}
    for s in ex.spans:
        where = "its part scores" if s.scope == "part" else "the text scores"
        lines.append(f"  span {s.start}-{s.end} drives {names.get(s.category, s.category)}: "
                     f"{where} {s.score:.2f}, {s.without:.2f} without it")
        lines.append(f"    {_excerpt(ex.text, s)}")
    if ex.note:
        lines.append(f"  note: {ex.note}")
    how = {"words": "occlusion by words", "parts": "occlusion by parts", "codes": "guard category codes",
           "none": "scores only"}[ex.method]
    if ex.checks:
        lines.append(f"  ({how}: {ex.checks} checks in {ex.ms:.0f} ms)")
    elif not ex.error:
        lines.append("  (from the verdict's scores; the withheld text is not searched or shown)")
    return "\n".join(lines)


def _label(r: Reason) -> str:
    return r.name if r.id == OVERALL else f"{r.name} [{r.id}]"


def why(gate: Any, verdict: Verdict, text: str | None, context: Sequence[Message] | None = None) -> str:
    """The REPL's /why in one call: the rendered explanation of `verdict` on `text`.

    A blocked prompt: pass the prompt (the user's own words; spans are searched). A reply blocked
    mid-stream: pass None, since its flagged part was withheld and /why must not show it; the
    categories come from the verdict alone."""
    if text is None:
        return render(from_verdict(gate, verdict))
    return render(explain(gate, text, verdict.role, context))
