"""The gate as the proxy uses it: one shared moderator for every client, the conversation a client
sends checked as a whole, every fresh verdict in the decision log (hashes, not texts).

Moderator backends (onnxruntime sessions with their tokenizer, llama.cpp guard models) are not
made for concurrent calls, so each is wrapped in a lock; the rules moderator is pure and runs free.
Texts of a conversation that an earlier request already had checked and allowed (the history a
chat client resends every turn) come from a bounded cache instead of being scored again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Sequence

from prism_cli.audit import log_verdicts
from prism_cli.gate import Gate
from prism_cli.serve import tool_calls
from prism_cli.session import labels
from prism_cli.stream_gate import StreamGate
from prism_cli.verdict import Verdict

PROMPT_ROLES = {"system", "developer", "user", "tool", "function"}
CACHE_SIZE = 4096


class Serialized:
    """A moderator behind a lock: one scoring call at a time, whatever thread asks."""

    def __init__(self, inner: Any, lock: threading.Lock):
        self._inner, self._lock = inner, lock

    def score(self, texts: Any, role: Any, context: Any = None) -> Any:
        with self._lock:
            return self._inner.score(texts, role, context)

    def token_spans(self, text: str) -> Any:
        with self._lock:
            return self._inner.token_spans(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def shared_gate(gate: Gate) -> Gate:
    """The same policy and moderators, safe to call from many worker threads at once."""
    from prism_cli.moderators.rules import RulesModerator

    lock = threading.Lock()
    mods = [m if isinstance(m, RulesModerator) else Serialized(m, lock) for m in gate.moderators]
    return Gate(gate.policy, mods, include_rules=False)  # type: ignore[arg-type]


class Moderation:
    def __init__(self, gate: Gate, *, log_text: bool = False, cache_size: int = CACHE_SIZE):
        self.gate = shared_gate(gate)
        self.policy = gate.policy
        self.log_text = log_text
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------ prompts

    def check_conversation(self, messages: Sequence[dict[str, str]]) -> Verdict | None:
        """The blocking verdict of a conversation, or None when it may go on.

        The latest user turn is checked as a prompt with the conversation before it as context;
        every other system, user or tool message is checked as a prompt and every assistant
        message as a response (a client can edit or invent a model's earlier turns)."""
        last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if last is not None and messages[last]["content"]:
            v = self.gate.check(messages[last]["content"], "prompt", id="prompt", context=list(messages[:last]))
            self.log(v, messages[last]["content"])
            if v.blocked:
                return v
        for role in ("prompt", "response"):
            texts = [
                m["content"] for i, m in enumerate(messages)
                if i != last and m["content"] and (m["role"] in PROMPT_ROLES) == (role == "prompt")
            ]  # fmt: skip
            v = self._check_fresh(list(dict.fromkeys(texts)), role)
            if v is not None:
                return v
        return None

    def check_prompt(self, text: str) -> Verdict | None:
        v = self.gate.check(text, "prompt", id="prompt")
        self.log(v, text)
        return v if v.blocked else None

    def _check_fresh(self, texts: list[str], role: str) -> Verdict | None:
        keys = {t: (role, hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()) for t in texts}
        with self._cache_lock:
            todo = [t for t in texts if keys[t] not in self._cache]
            for t in texts:
                if keys[t] in self._cache:
                    self._cache.move_to_end(keys[t])
        if not todo:
            return None
        verdicts = self.gate.check_batch(todo, role, ids=[f"history-{i}" for i in range(len(todo))])  # type: ignore[arg-type]
        blocking = None
        for t, v in zip(todo, verdicts):
            self.log(v, t)
            if v.blocked:
                blocking = blocking or v
            elif v.error is None:
                with self._cache_lock:
                    self._cache[keys[t]] = True
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return blocking

    # ------------------------------------------------------------------ replies

    def check_tool_calls(self, calls: list[dict[str, Any]], context: Sequence[dict[str, str]]) -> Verdict | None:
        """The blocking verdict of a reply's tool calls (their names and arguments, as a response), or None."""
        text = tool_calls.text(calls)
        v = self.gate.check(text, "response", id="tool_calls", context=list(context))
        self.log(v, text)
        return v if v.blocked else None

    def stream_gate(self, context: Sequence[dict[str, str]], should_stop: Any) -> StreamGate:
        return StreamGate(self.gate, context=list(context), should_stop=should_stop, id="response")

    def log(self, verdict: Verdict, text: str) -> None:
        log_verdicts("serve", [verdict], [text], include_text=self.log_text)

    def why(self, verdict: Verdict) -> str:
        """The categories (by policy name) or the moderator failure behind a block."""
        if verdict.error:
            return f"{verdict.error} (prism fails closed)"
        return labels(verdict, self.gate) or "the policy's overall threshold"

    def refusal(self, verdict: Verdict, what: str) -> str:
        return f"prism: {what} blocked by policy '{self.policy.name}': {self.why(verdict)}"

    def verdict_summary(self, verdict: Verdict) -> dict[str, Any]:
        """What a client may learn of a verdict: decision and categories, never a text."""
        return {
            "decision": verdict.decision.value,
            "flagged": list(verdict.flagged),
            "policy": verdict.policy,
            "moderator": verdict.moderator,
            **({"error": verdict.error} if verdict.error else {}),
        }
