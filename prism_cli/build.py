"""Assemble a Gate from what the user asked for: the one place commands get their gate."""

from __future__ import annotations

from prism_cli.gate import Gate
from prism_cli.moderators.loader import choose_spec, load_moderator
from prism_cli.policy import Policy
from prism_cli.policy_store import load_policy


def build_gate(policy: str | Policy | None = None, moderator: str | None = None, **options: object) -> Gate:
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    mod = load_moderator(choose_spec(moderator, pol), pol, **options)
    return Gate(pol, [mod])
