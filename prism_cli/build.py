"""Assemble a Gate from what the user asked for: the one place commands get their gate,
and where configured defaults are resolved (and checked before `prism config set` stores them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prism_cli import config
from prism_cli.errors import InputError
from prism_cli.gate import Gate
from prism_cli.moderators.loader import load_chosen
from prism_cli.policy import Policy
from prism_cli.policy_store import DEFAULT_POLICY, load_policy


def resolve_policy(policy: str | Policy | None) -> Policy:
    """--policy, else the config's `policy` (its errors name the config key and file), else the default."""
    if isinstance(policy, Policy):
        return policy
    if policy is not None:
        if not policy.strip():
            raise InputError("--policy needs a name or a YAML file, got an empty string (prism policy list)")
        return load_policy(policy)
    configured = config.get("policy")
    if configured is None:
        return load_policy(DEFAULT_POLICY)
    with config.provenance("policy"):
        if not isinstance(configured, str) or not configured.strip():
            raise InputError(f"a policy name or YAML file is needed, got {configured!r}")
        return load_policy(configured)


def build_gate(policy: str | Policy | None = None, moderator: str | None = None, **options: object) -> Gate:
    from prism_cli.allowlist import gate_matcher

    pol = resolve_policy(policy)
    gate = Gate(pol, [load_chosen(moderator, pol, **options)])
    gate.allowed = gate_matcher()  # the user's allow-list applies wherever a command builds its gate
    return gate


def check_config_value(key: str, value: Any) -> tuple[Any, str | None]:
    """A parsed `config set` value made ready to store (paths made absolute), and a note for the user.

    A policy must load and validate; a moderator must name something that can be loaded now
    or pulled later. Raises InputError (PolicyError) otherwise, suggesting close names.
    """
    if key == "policy":
        path = Path(value).expanduser()
        if path.suffix in (".yaml", ".yml") or path.exists():
            value = str(path.resolve())
        load_policy(value)  # it must exist and validate now, not fail every later command
        return value, None
    if key == "moderator":
        from prism_cli.moderators.loader import check_spec

        return check_spec(value)
    return value, None
