"""Turn a moderator spec (registry name, model folder, .gguf file, "rules") into a Moderator.

Order of choice: --moderator, then the policy's `moderator`, then `prism config set
moderator`, then the bundled default. Nothing heavy is imported until a backend loads.
"""

from __future__ import annotations

from pathlib import Path

from prism_cli import config
from prism_cli.errors import ModelNotFound
from prism_cli.moderators.base import Moderator
from prism_cli.paths import shipped_models_dir
from prism_cli.policy import Policy

DEFAULT_MODERATOR = "prism-default"


def choose_spec(explicit: str | None, policy: Policy) -> str:
    return explicit or policy.moderator or config.get("moderator") or DEFAULT_MODERATOR


def bundled_default_dir() -> Path:
    return shipped_models_dir() / "default"


def load_moderator(spec: str, policy: Policy, **options: object) -> Moderator:
    """Build the backend a spec names. Raises ModelNotFound / ModeratorError (exit 3)."""
    if spec == "rules":
        from prism_cli.moderators.rules import RulesModerator

        return RulesModerator(policy)
    if spec == "profanity-check":  # a baseline for `prism eval`, not a safety moderator
        from prism_cli.moderators.profanity import ProfanityModerator

        return ProfanityModerator()
    if spec.startswith("cascade:"):
        from prism_cli.moderators.cascade import build_cascade

        return build_cascade(spec, policy, **options)
    path = Path(spec).expanduser()
    if path.exists():
        return _from_path(path, policy, None, **options)
    if spec == DEFAULT_MODERATOR:
        folder = bundled_default_dir()
        if not (folder / "model.onnx").is_file():
            raise ModelNotFound(
                "the bundled default moderator is missing from this install "
                "(reinstall prism, or choose one: prism models list, --moderator NAME)"
            )
        return _from_path(folder, policy, None, **options)
    try:
        from prism_cli.registry import find_installed
    except ImportError:  # registry not available in this build
        find_installed = None  # type: ignore[assignment]
    installed = find_installed(spec) if find_installed else None
    if installed is None:
        from prism_cli.registry import load_catalogue

        if spec in load_catalogue():
            raise ModelNotFound(f"moderator {spec!r} is not installed (prism models pull {spec})")
        raise ModelNotFound(f"unknown moderator {spec!r}: not a file, folder or registry name (prism models list)")
    return _from_path(Path(installed.path), policy, getattr(installed, "prompt_format", None), registry_name=spec, **options)


def _from_path(path: Path, policy: Policy, installed_format: str | None, **options: object) -> Moderator:
    if path.is_dir() and (path / "prism.json").is_file():
        from prism_cli.moderators.classifier import ClassifierModerator

        return ClassifierModerator(path, threads=options.get("threads"))  # type: ignore[arg-type]
    gguf = path if path.is_file() else next(iter(sorted(path.glob("*.gguf"))), None)
    if gguf is not None and gguf.suffix == ".gguf":
        from prism_cli.moderators.guard_llm import GuardLLMModerator

        return GuardLLMModerator(gguf, policy, prompt_format=installed_format or options.get("prompt_format"), **{
            k: v for k, v in options.items() if k in ("threads", "n_ctx", "registry_name")
        })  # type: ignore[arg-type]
    raise ModelNotFound(f"{path}: not a moderator (expected a classifier folder with prism.json, or a .gguf guard model)")
