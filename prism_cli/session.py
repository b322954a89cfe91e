"""A chat session: one turn is p(x) -> engine stream -> StreamGate(q) -> user.

The session owns the history the model sees. A blocked prompt never reaches the engine
and never enters the history; a blocked response stops generation and the turn is left
out of the history too, so nothing the policy refused feeds a later turn. When the
conversation outgrows the context window the oldest turns are dropped, with a notice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from prism_cli.engines.base import ChatMessage, Engine
from prism_cli.errors import InputError
from prism_cli.gate import Gate
from prism_cli.stream_gate import StreamGate
from prism_cli.verdict import BLOCKED, COMPLETE, INTERRUPTED, PROMPT_BLOCKED, RESPONSE_BLOCKED, Verdict
MIN_REPLY_TOKENS = 16
"""Fewer free tokens than this for the reply, even with the history dropped: the prompt is too long."""


@dataclass
class Timings:
    prompt_ms: float = 0.0
    """p(x): the prompt check."""
    gen_ms: float = 0.0
    """Time spent waiting for the engine's tokens."""
    moderation_ms: float = 0.0
    """q(Y): all checks of the response, windows and final."""
    tokens: int = 0
    checks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_ms": round(self.prompt_ms, 3),
            "gen_ms": round(self.gen_ms, 3),
            "moderation_ms": round(self.moderation_ms, 3),
            "tokens": self.tokens,
            "checks": self.checks,
        }


@dataclass
class TurnResult:
    turn: int
    prompt: str
    prompt_verdict: Verdict | None
    response: str
    """Only what the user was shown: text a safe check covered."""
    response_verdict: Verdict | None
    outcome: str
    """complete | prompt blocked | response blocked | interrupted"""
    timings: Timings = field(default_factory=Timings)
    warnings: list[Verdict] = field(default_factory=list)
    note: str | None = None
    """What looks wrong with a complete reply (empty, a loop) and how to fix it; None when it looks fine."""

    @property
    def blocked(self) -> bool:
        return self.outcome in (PROMPT_BLOCKED, RESPONSE_BLOCKED)

    @property
    def moderator_failed(self) -> bool:
        return any(v is not None and v.error is not None for v in (self.prompt_verdict, self.response_verdict))

    @property
    def blocking_verdict(self) -> Verdict | None:
        if self.outcome == PROMPT_BLOCKED:
            return self.prompt_verdict
        return self.response_verdict if self.outcome == RESPONSE_BLOCKED else None

    def to_record(self) -> dict[str, Any]:
        """One transcript line (batch output, /save)."""
        return {
            "turn": self.turn,
            "prompt": self.prompt,
            "prompt_verdict": self.prompt_verdict.to_dict() if self.prompt_verdict else None,
            "response": self.response,
            "response_verdict": self.response_verdict.to_dict() if self.response_verdict else None,
            "outcome": self.outcome,
            "timings": self.timings.to_dict(),
            "note": self.note,
        }


Emit = Callable[[str], None]


class ChatSession:
    """History + engine + gate. `gate=None` turns moderation off (benchmarks, debugging)."""

    def __init__(
        self,
        engine: Engine,
        gate: Gate | None,
        *,
        system: str | None = None,
        max_tokens: int = 512,
        temperature: float = 0.7,
        seed: int | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_verdict: Callable[[Verdict, str], None] | None = None,
        independent: bool = False,
    ):
        self.engine = engine
        self.gate = gate
        self.system = system
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.on_notice = on_notice or (lambda msg: None)
        self.on_verdict = on_verdict  # e.g. the decision log: each verdict with the text it judged
        self.independent = independent
        """Each turn starts a fresh conversation (batch default: a reply depends on its own prompt only)."""
        self.history: list[ChatMessage] = []
        self.turns: list[TurnResult] = []

    def reset(self) -> None:
        """Forget the conversation (the transcript of past turns is kept for /save)."""
        self.history.clear()

    def messages(self, prompt: str) -> list[ChatMessage]:
        head: list[ChatMessage] = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history + [{"role": "user", "content": prompt}]

    # ------------------------------------------------------------------ one turn

    def turn(self, prompt: str, emit: Emit | None = None, should_stop: Callable[[], bool] | None = None) -> TurnResult:
        """Run one user turn; released text goes to `emit` as it is approved.

        Raises EngineError when the model cannot run, InputError when the prompt alone
        does not fit the context. A KeyboardInterrupt while generating ends the turn as
        interrupted (the engine is closed) instead of propagating.
        """
        result = TurnResult(len(self.turns) + 1, prompt, None, "", None, COMPLETE)
        if self.independent:
            self.history.clear()
        try:
            self._run(result, emit or (lambda s: None), should_stop)
        finally:
            if self.on_verdict is not None:
                if result.prompt_verdict is not None:
                    self.on_verdict(result.prompt_verdict, prompt)
                if result.response_verdict is not None:
                    self.on_verdict(result.response_verdict, result.response)
        self.turns.append(result)
        return result

    def _run(self, result: TurnResult, emit: Emit, should_stop: Callable[[], bool] | None) -> None:
        prompt, t = result.prompt, result.timings
        user: ChatMessage = {"role": "user", "content": prompt}
        if self.gate is not None:
            t0 = time.perf_counter()
            result.prompt_verdict = self.gate.check(prompt, "prompt", id=str(result.turn), context=list(self.history))
            t.prompt_ms = (time.perf_counter() - t0) * 1000
            if result.prompt_verdict.blocked:
                result.outcome = PROMPT_BLOCKED
                return
        if should_stop is not None and should_stop():
            result.outcome = INTERRUPTED
            return
        max_tokens = self._fit_context(prompt)
        pieces = self.engine.stream(self.messages(prompt), max_tokens=max_tokens, temperature=self.temperature, seed=self.seed)
        try:
            if self.gate is None:
                self._pass_through(pieces, result, emit, should_stop)
            else:
                self._gated(pieces, result, emit, should_stop, user)
        except KeyboardInterrupt:
            result.outcome = INTERRUPTED
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        if result.outcome == COMPLETE or (result.outcome == INTERRUPTED and result.response):
            self.history += [user, {"role": "assistant", "content": result.response}]
        if result.outcome == COMPLETE:
            self._check_reply(result)

    def _check_reply(self, result: TurnResult) -> None:
        """An empty or looping reply is flagged with the engine's advice on what to fix (not passed off as fine)."""
        from prism_cli.degenerate import problem

        what = problem(result.response, result.timings.tokens)
        if what is None:
            return
        hint = getattr(self.engine, "template_hint", "") or "check the model and its chat template"
        result.note = f"{what}: {hint}"
        self.on_notice(f"turn {result.turn}: {result.note}")

    def _gated(self, pieces: Any, result: TurnResult, emit: Emit, should_stop: Any, user: ChatMessage) -> None:
        assert self.gate is not None
        sg = StreamGate(self.gate, context=[user], should_stop=should_stop, id=str(result.turn))
        try:
            for text in sg.run(pieces):
                result.response += text
                emit(text)
        finally:
            t = result.timings
            t.gen_ms, t.moderation_ms, t.tokens, t.checks = sg.gen_ms, sg.moderation_ms, sg.tokens, sg.checks
            result.response_verdict = sg.verdict
            result.warnings = sg.warnings
        result.outcome = {BLOCKED: RESPONSE_BLOCKED, INTERRUPTED: INTERRUPTED}.get(sg.outcome or "", COMPLETE)

    def _pass_through(self, pieces: Any, result: TurnResult, emit: Emit, should_stop: Any) -> None:
        """Moderation off: every piece goes straight to the user (the engine's own speed)."""
        clock = time.perf_counter
        it = iter(pieces)
        parts: list[str] = []
        t0 = clock()
        try:
            for piece in it:
                parts.append(piece)
                emit(piece)
                if should_stop is not None and should_stop():
                    result.outcome = INTERRUPTED
                    break
        finally:
            result.timings.gen_ms = (clock() - t0) * 1000
            # pieces can merge several byte tokens; the engine's own count is exact when it has one
            stats = getattr(self.engine, "last_stats", None) or {}
            result.timings.tokens = int(stats.get("generated_tokens", len(parts)))
            result.response = "".join(parts)

    # ------------------------------------------------------------------ context

    def _fit_context(self, prompt: str) -> int:
        """Drop the oldest turns until prompt + reply fit; returns the reply's token budget."""
        n_ctx = getattr(self.engine, "n_ctx", 0) or 0
        if n_ctx <= 0:
            return self.max_tokens
        used = self.engine.count_tokens(self.messages(prompt))
        dropped = 0
        while self.history and used + self.max_tokens > n_ctx:
            del self.history[:2]
            dropped += 1
            used = self.engine.count_tokens(self.messages(prompt))
        if dropped:
            self.on_notice(
                f"context full ({n_ctx} tokens): dropped the {dropped} oldest turn{'s' * (dropped > 1)}, "
                f"{len(self.history) // 2} kept"
            )
        room = n_ctx - used
        if room >= self.max_tokens:
            return self.max_tokens
        if room < MIN_REPLY_TOKENS:
            raise InputError(f"the prompt takes {used} tokens, too long for the {n_ctx}-token context (raise --ctx)")
        self.on_notice(f"context nearly full: this reply is limited to {room} tokens")
        return room


def labels(verdict: Verdict | None, gate: Gate | None) -> str:
    """The categories a verdict flagged, by their policy names ("Violent Crimes [S1], ...")."""
    if verdict is None:
        return ""
    if verdict.error:
        return verdict.error
    if gate is None:
        return ", ".join(verdict.flagged)
    return gate.policy.labels(verdict.flagged)



def unscored_notice(gate: Gate | None) -> str | None:
    """The chat banner's warning when policy categories have no moderator or rule behind them."""
    if gate is None:
        return None
    missing = gate.unscored()
    if not missing:
        return None
    o = gate.policy.overall
    fallback = (
        f"only the overall threshold ({o.threshold:g}) can catch them" if o is not None
        else "the policy has no overall threshold, so nothing catches them"
    )
    return f"not scored by {gate.name}: {', '.join(missing)} ({fallback}; prism policy show -m to see coverage)"
