"""Turn a moderator spec (registry name, model folder, .gguf file, "rules") into a Moderator.

Order of choice: --moderator, then the policy's `moderator`, then `prism config set
moderator`, then the bundled default. Nothing heavy is imported until a backend loads.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import ContextManager

from prism_cli import config
from prism_cli.errors import InputError, ModelNotFound, ModeratorError, noting, suggest
from prism_cli.moderators.base import Moderator
from prism_cli.paths import shipped_models_dir
from prism_cli.policy import Policy

DEFAULT_MODERATOR = "prism-default"
RESERVED = ("rules", "profanity-check")  # spec words, never model names; "cascade:..." has a ':' already


def _choose(explicit: str | None, policy: Policy) -> tuple[str, ContextManager[None]]:
    """The spec to load and a context that says where it came from when loading it fails."""
    if explicit is not None:
        if not explicit.strip():
            raise InputError("--moderator needs a name, got an empty string (prism models list)")
        return explicit, nullcontext()
    if policy.moderator:
        return policy.moderator, noting(f"'moderator' in {policy.source}")
    configured = config.get("moderator")
    if configured is not None:
        with config.provenance("moderator"):
            if not isinstance(configured, str) or not configured.strip():
                raise InputError(f"a moderator name or path is needed, got {configured!r}")
        return configured, config.provenance("moderator")
    return DEFAULT_MODERATOR, nullcontext()


def choose_spec(explicit: str | None, policy: Policy) -> str:
    """--moderator, then the policy's `moderator`, then the config's, then the bundled default."""
    return _choose(explicit, policy)[0]


def load_chosen(explicit: str | None, policy: Policy, **options: object) -> Moderator:
    """Load the moderator choose_spec picks; a failure names the policy or config key it came from."""
    spec, origin = _choose(explicit, policy)
    with origin:
        return load_moderator(spec, policy, **options)


def check_spec(spec: str) -> tuple[str, str | None]:
    """Whether `spec` names a moderator that loads now or after a pull, without loading it.

    Returns the spec to store (a path made absolute) and a note for the user, or raises
    InputError naming what is wrong, with close names when it looks mistyped.
    """
    spec = spec.strip()
    if not spec:
        raise InputError("a moderator name or path is needed")
    if spec in RESERVED or spec == DEFAULT_MODERATOR:
        return spec, None
    if spec.startswith("cascade:"):
        from prism_cli.moderators.cascade import parse_spec

        try:
            parts = parse_spec(spec)[:2]
        except ModeratorError as e:
            raise InputError(str(e)) from None
        if any(p.startswith("cascade:") for p in parts):
            raise InputError(f"{spec!r}: a cascade cannot nest another cascade")
        notes = [check_spec(p)[1] for p in parts]
        return spec, "; ".join(n for n in notes if n) or None
    path = Path(spec).expanduser()
    if path.exists():
        _check_path(path)
        return str(path.resolve()), None
    from prism_cli.registry import find_installed, list_installed, load_catalogue

    if find_installed(spec) is not None:
        return spec, None
    catalogue = load_catalogue()
    if spec in catalogue:
        return spec, f"{spec!r} is not installed yet (prism models pull {spec}, or prism models add)"
    known = [DEFAULT_MODERATOR, *RESERVED, *catalogue, *(i.name for i in list_installed())]
    raise InputError(f"unknown moderator {spec!r}: not a file, folder or registry name "
                     f"({suggest(spec, known)}prism models list)")


def _check_path(path: Path) -> None:
    """The same test _from_path applies, without loading a runtime."""
    if path.is_dir() and (path / "prism.json").is_file():
        from prism_cli.moderators.classifier_config import read_config

        try:
            read_config(path)
        except ModeratorError as e:
            raise InputError(str(e)) from None
    elif not (path.suffix == ".gguf" and path.is_file()) and not (path.is_dir() and any(path.glob("*.gguf"))):
        raise InputError(f"{path}: not a moderator (expected a classifier folder with prism.json, or a .gguf guard model)")


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
