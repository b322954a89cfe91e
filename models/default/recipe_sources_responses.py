"""Loaders for model *responses* (q(Y)): compliant harmful answers versus refusals and safe answers,
and physical-safety advice. The stream gate scores partial replies, so the model must tell a harmful
answer from a refusal or a harmless reply, not just a harmful request from a benign one."""

from __future__ import annotations

import random
from typing import Iterator

from recipe_rows import Row, _csv, _json, _safe, _unsafe

_MAX_CHARS = 1200  # long role-play replies: the opening carries the compliance signal the stream gate sees


def load_gptfuzz(n_safe: int = 1600, seed: int = 21) -> Iterator[Row]:
    """LLM replies to jailbreak prompts, hand-labelled jailbroken (1) or not (0)."""
    rows = _csv("gptfuzz_labeled_responses/datasets/responses_labeled/train.csv")
    rows += _csv("gptfuzz_labeled_responses/datasets/responses_labeled/evaluate.csv")
    safe = [r for r in rows if r["label"] == "0"]
    random.Random(seed).shuffle(safe)
    for r in [r for r in rows if r["label"] == "1"] + safe[:n_safe]:
        t = r["Response"].strip()[:_MAX_CHARS]
        if len(t) < 8:
            continue
        if r["label"] == "1":
            yield _unsafe(t, "gptfuzz/jailbroken", "response")
        else:
            yield _safe(t, "gptfuzz/refused", "response")


def load_diasafety(n_safe: int = 2500, seed: int = 22) -> Iterator[Row]:
    """Chatbot replies labelled in context. Only 'Offending User' unsafe replies are unsafe on their own
    (insults); the other unsafe kinds (agreeing with the user, ignoring a risk) depend on the context
    this model does not see, so they are left out. Safe replies of every kind are negatives."""
    rows = [r for f in ("train", "val", "test") for r in _json(f"diasafety/DiaSafety_dataset/{f}.json")]
    safe = [r for r in rows if r["label"] == "Safe"]
    random.Random(seed).shuffle(safe)
    for r in safe[:n_safe]:
        if len(r["response"].strip()) >= 6:
            yield _safe(r["response"], "diasafety/safe", "response")
    for r in rows:
        if r["label"] == "Unsafe" and r["category"] == "Offending User" and len(r["response"].strip()) >= 6:
            yield _unsafe(r["response"], "diasafety/offending", "response", extra={"toxic"})


def load_safetext() -> Iterator[Row]:
    """Physical-safety scenarios: the same prefix with unsafe advice (S6: saying a dangerous act is
    safe) and with safe advice (a benign look-alike)."""
    for prefix, adv in _json("safetext/SafeText.json").items():
        for t in adv.get("unsafe", []):
            yield _unsafe(f"{prefix.strip()} {t.strip()}", "safetext/unsafe", "response", extra={"specialized_advice"})
        for t in adv.get("safe", [])[:1]:
            yield _safe(f"{prefix.strip()} {t.strip()}", "safetext/safe", "lookalike")
