"""Assemble a Gate from what the user asked for: the one place that resolves names.

Moderator specs are parsed here once (`parse_spec`), then either loaded (`load_moderator`) or
only checked (`check_spec`, before `prism config set` stores one). Configured defaults
(config.yaml: policy, moderator) are read here, not in the layers below. Order of choice for
the moderator: --moderator, then the policy's `moderator`, then the config's, then the bundled
default; for the policy: --policy, then the config's, then the shipped default.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager

from prism_cli import config
from prism_cli.errors import InputError, ModelNotFound, ModeratorError, noting, suggest
from prism_cli.gate import Gate
from prism_cli.moderators import loader
from prism_cli.moderators.base import Moderator, ModeratorOptions
from prism_cli.policy import Policy
from prism_cli.policy_store import DEFAULT_POLICY, load_policy
from prism_cli.moderators.cascade import DEFAULT_BAND
from prism_cli.moderators.loader import DEFAULT_MODERATOR, PROFANITY, RESERVED, RULES

__all__ = ["ModeratorOptions", "DEFAULT_MODERATOR", "build_gate", "resolve_policy", "load_moderator", "parse_spec"]

CASCADE = "cascade:"


@dataclass(frozen=True)
class Spec:
    """A moderator spec, parsed: what kind of thing it names, and its parts."""

    kind: str
    """"rules" | "profanity-check" | "default" | "cascade" | "path" | "name"."""
    text: str
    path: Path | None = None
    stages: tuple["Spec", "Spec"] | None = None
    band: tuple[float, float] = DEFAULT_BAND


def parse_spec(text: str) -> Spec:
    """The one reading of the spec grammar. Raises ModeratorError for a malformed cascade.

    rules | profanity-check | prism-default | cascade:FIRST,SECOND[,low,high] | a path that
    exists (classifier folder, .gguf file or folder) | a registry name.
    """
    text = text.strip()
    if not text:
        raise InputError("a moderator name or path is needed (prism models list)")
    if text in (RULES, PROFANITY):
        return Spec(text, text)
    if text == DEFAULT_MODERATOR:
        return Spec("default", text)
    if text.startswith(CASCADE):
        return _parse_cascade(text)
    path = Path(text).expanduser()
    if path.exists():
        return Spec("path", text, path=path)
    return Spec("name", text)


def _parse_cascade(text: str) -> Spec:
    parts = [p.strip() for p in text[len(CASCADE):].split(",")]
    low, high = DEFAULT_BAND
    if len(parts) == 4:
        try:
            low, high = float(parts[2]), float(parts[3])
        except ValueError:
            raise ModeratorError(f"{text!r}: low and high must be numbers (cascade:FIRST,SECOND[,low,high])") from None
        parts = parts[:2]
    if len(parts) != 2 or not all(parts):
        raise ModeratorError(f"{text!r}: expected cascade:FIRST,SECOND[,low,high]")
    if not 0.0 <= low <= high <= 1.0:
        raise ModeratorError(f"{text!r}: the band needs 0 <= low <= high <= 1")
    first, second = parse_spec(parts[0]), parse_spec(parts[1])
    if "cascade" in (first.kind, second.kind):
        raise ModeratorError(f"{text!r}: a cascade cannot nest another cascade")
    return Spec("cascade", text, stages=(first, second), band=(low, high))


def load_moderator(spec: str | Spec, policy: Policy, options: ModeratorOptions | None = None) -> Moderator:
    """Build the backend a spec names. Raises ModelNotFound / ModeratorError (exit 3)."""
    s = parse_spec(spec) if isinstance(spec, str) else spec
    opts = options or ModeratorOptions()
    if s.kind in (RULES, PROFANITY):
        return loader.builtin(s.kind, policy)
    if s.kind == "cascade":
        from prism_cli.moderators.cascade import CascadeModerator

        assert s.stages is not None
        first, second = (load_moderator(stage, policy, opts) for stage in s.stages)
        return CascadeModerator(first, second, *s.band)
    if s.kind == "path":
        assert s.path is not None
        return loader.from_path(s.path, policy, opts)
    if s.kind == "default":
        return loader.bundled_default(policy, opts)
    from prism_cli.model_store import find_installed
    from prism_cli.registry import load_catalogue

    installed = find_installed(s.text)
    if installed is None:
        if s.text in load_catalogue():
            raise ModelNotFound(f"moderator {s.text!r} is not installed (prism models pull {s.text})")
        raise ModelNotFound(f"unknown moderator {s.text!r}: not a file, folder or registry name (prism models list)")
    return loader.from_path(Path(installed.path), policy, opts, installed.prompt_format, registry_name=s.text)


def check_spec(text: str) -> tuple[str, str | None]:
    """Whether a spec names a moderator that loads now or after a pull, without loading it.

    Returns the spec to store (a path made absolute) and a note for the user, or raises
    InputError naming what is wrong, with close names when it looks mistyped.
    """
    try:
        s = parse_spec(text)
    except ModeratorError as e:
        raise InputError(str(e)) from None
    if s.kind == "cascade":
        assert s.stages is not None
        notes = [check_spec(stage.text)[1] for stage in s.stages]
        return s.text, "; ".join(n for n in notes if n) or None
    if s.kind == "path":
        assert s.path is not None
        try:
            loader.check_path(s.path)
        except ModeratorError as e:
            raise InputError(str(e)) from None
        return str(s.path.resolve()), None
    if s.kind != "name":
        return s.text, None
    from prism_cli.model_store import find_installed, list_installed
    from prism_cli.registry import load_catalogue

    if find_installed(s.text) is not None:
        return s.text, None
    catalogue = load_catalogue()
    if s.text in catalogue:
        return s.text, f"{s.text!r} is not installed yet (prism models pull {s.text}, or prism models add)"
    known = [DEFAULT_MODERATOR, *RESERVED, *catalogue, *(i.name for i in list_installed())]
    raise InputError(f"unknown moderator {s.text!r}: not a file, folder or registry name "
                     f"({suggest(s.text, known)}prism models list)")


def _configured(key: str, settings: dict[str, Any], what: str) -> str | None:
    """A configured name (None when unset); a value that is no name is an error naming key and file."""
    value = settings.get(key)
    if value is not None:
        with config.provenance(key):
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{what} is needed, got {value!r}")
    return value


def resolve_policy(policy: str | Policy | None, settings: dict[str, Any] | None = None) -> Policy:
    """--policy, else the config's `policy` (its errors name the config key and file), else the default."""
    if isinstance(policy, Policy):
        return policy
    if policy is not None:
        if not policy.strip():
            raise InputError("--policy needs a name or a YAML file, got an empty string (prism policy list)")
        return load_policy(policy)
    configured = _configured("policy", config.load() if settings is None else settings, "a policy name or YAML file")
    if configured is None:
        return load_policy(DEFAULT_POLICY)
    with config.provenance("policy"):
        return load_policy(configured)


def choose_spec(explicit: str | None, policy: Policy, settings: dict[str, Any] | None = None) -> tuple[str, ContextManager[None]]:
    """The moderator spec to load and a context that says where it came from when loading it fails."""
    if explicit is not None:
        if not explicit.strip():
            raise InputError("--moderator needs a name, got an empty string (prism models list)")
        return explicit, nullcontext()
    if policy.moderator:
        return policy.moderator, noting(f"'moderator' in {policy.source}")
    configured = _configured("moderator", config.load() if settings is None else settings, "a moderator name or path")
    if configured is not None:
        return configured, config.provenance("moderator")
    return DEFAULT_MODERATOR, nullcontext()


def default_moderator() -> str:
    """The moderator a command uses when neither --moderator nor the policy names one."""
    return _configured("moderator", config.load(), "a moderator name or path") or DEFAULT_MODERATOR


def build_gate(
    policy: str | Policy | None = None, moderator: str | None = None, options: ModeratorOptions | None = None
) -> Gate:
    """The gate a command runs: policy and moderator resolved from flags, policy and config (read once)."""
    settings = config.load()
    pol = resolve_policy(policy, settings)
    spec, origin = choose_spec(moderator, pol, settings)
    with origin:
        gate = Gate(pol, [load_moderator(spec, pol, options)])
    from prism_cli.allowlist import gate_matcher

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
        return check_spec(value)
    return value, None
