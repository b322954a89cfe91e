"""Backends from concrete things: a built-in word, a model folder or .gguf file, the bundled default.

Spec strings are parsed and names resolved in build.py; this module only constructs. Nothing
heavy is imported until a backend loads.
"""

from __future__ import annotations

from pathlib import Path

from prism_cli.errors import ModelNotFound, ModeratorError
from prism_cli.moderators.base import Moderator, ModeratorOptions
from prism_cli.paths import shipped_models_dir
from prism_cli.policy import Policy

DEFAULT_MODERATOR = "prism-default"
RULES, PROFANITY = "rules", "profanity-check"
RESERVED = (RULES, PROFANITY)
"""Moderators that need no model file: spec words, never model names ("cascade:..." has a ':' already)."""

_NOT_A_MODERATOR = "not a moderator (expected a classifier folder with prism.json, or a .gguf guard model)"


def builtin(word: str, policy: Policy) -> Moderator:
    """"rules" (the policy's keywords and patterns) or "profanity-check" (a baseline for `prism eval`)."""
    if word == RULES:
        from prism_cli.moderators.rules import RulesModerator

        return RulesModerator(policy)
    if word == PROFANITY:
        from prism_cli.moderators.profanity import ProfanityModerator

        return ProfanityModerator()
    raise ValueError(f"not a built-in moderator: {word!r}")


def bundled_default_dir() -> Path:
    return shipped_models_dir() / "default"


def bundled_default(policy: Policy, options: ModeratorOptions) -> Moderator:
    folder = bundled_default_dir()
    if not (folder / "model.onnx").is_file():
        raise ModelNotFound(
            "the bundled default moderator is missing from this install "
            "(reinstall prism, or choose one: prism models list, --moderator NAME)"
        )
    return from_path(folder, policy, options)


def _guard_file(path: Path) -> Path | None:
    """The .gguf a path names: the file itself, or the first in a folder."""
    gguf = path if path.is_file() else next(iter(sorted(path.glob("*.gguf"))), None)
    return gguf if gguf is not None and gguf.suffix == ".gguf" else None


def _is_classifier(path: Path) -> bool:
    return path.is_dir() and (path / "prism.json").is_file()


def check_path(path: Path) -> None:
    """The test from_path applies, without loading a runtime. Raises ModeratorError."""
    if _is_classifier(path):
        from prism_cli.moderators.classifier_config import read_config

        read_config(path)
    elif _guard_file(path) is None:
        raise ModeratorError(f"{path}: {_NOT_A_MODERATOR}")


def from_path(
    path: Path,
    policy: Policy,
    options: ModeratorOptions,
    installed_format: str | None = None,
    registry_name: str | None = None,
) -> Moderator:
    """A classifier folder or a guard model; an installed model's recorded prompt format wins."""
    if _is_classifier(path):
        from prism_cli.moderators.classifier import ClassifierModerator

        return ClassifierModerator(path, threads=options.threads)
    gguf = _guard_file(path)
    if gguf is not None:
        from prism_cli.moderators.guard_llm import GuardLLMModerator

        return GuardLLMModerator(
            gguf, policy, prompt_format=installed_format or options.prompt_format, threads=options.threads,
            n_ctx=options.n_ctx, registry_name=registry_name,
        )
    raise ModelNotFound(f"{path}: {_NOT_A_MODERATOR}")
