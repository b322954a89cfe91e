"""prism verdicts in the shape of OpenAI's moderation API (`results[].flagged`, `categories`,
`category_scores`), so an app that calls /v1/moderations can point at prism.

OpenAI's fixed category keys are filled from the policy's categories that mean the same harm
(the MLCommons ids S1-S14 of prism's policies); a key is the max (score) and the any (flag) of
the categories mapped to it. Every policy category also appears under its own id, and
`prism.not_covered` names the OpenAI keys the policy has nothing for, instead of a silent false.
"""

from __future__ import annotations

from typing import Any, Sequence

from prism_cli.policy import Policy
from prism_cli.verdict import Decision, Verdict

OPENAI_KEYS: dict[str, tuple[str, ...]] = {
    "harassment": (),
    "harassment/threatening": (),
    "hate": ("S10",),
    "hate/threatening": (),
    "illicit": ("S2", "S9"),
    "illicit/violent": ("S9",),
    "self-harm": ("S11",),
    "self-harm/intent": (),
    "self-harm/instructions": (),
    "sexual": ("S3", "S12"),
    "sexual/minors": ("S4",),
    "violence": ("S1",),
    "violence/graphic": (),
}


def moderation_result(verdict: Verdict, policy: Policy) -> dict[str, Any]:
    ids = {c.id for c in policy.active(verdict.role)}
    flagged_ids = set(verdict.flagged)
    categories: dict[str, bool] = {}
    scores: dict[str, float] = {}
    not_covered: list[str] = []
    for key, sources in OPENAI_KEYS.items():
        mine = [s for s in sources if s in ids]
        if not mine:
            not_covered.append(key)
        categories[key] = any(s in flagged_ids for s in mine)
        scores[key] = round(max((verdict.scores.get(s, 0.0) for s in mine), default=0.0), 6)
    for c in policy.active(verdict.role):
        categories[c.id] = c.id in flagged_ids
        scores[c.id] = round(verdict.scores.get(c.id, 0.0), 6)
    failed = verdict.error is not None
    return {
        "flagged": bool(verdict.flagged) or failed or verdict.decision is Decision.BLOCK,
        "categories": categories,
        "category_scores": scores,
        "prism": {
            "decision": verdict.decision.value,
            "flagged": list(verdict.flagged),
            "unsafe": round(verdict.unsafe, 6),
            "not_covered": not_covered,
            **({"error": verdict.error} if failed else {}),
        },
    }


def moderation_response(verdicts: Sequence[Verdict], policy: Policy, model: str, rid: str) -> dict[str, Any]:
    return {"id": rid, "model": model, "results": [moderation_result(v, policy) for v in verdicts]}
