"""Where prism keeps its files: platformdirs, overridable by PRISM_HOME (tests, air-gapped setups)."""

from __future__ import annotations

import os
from pathlib import Path

APP = "prism"
PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = PACKAGE_DIR.parent


def _home() -> Path | None:
    h = os.environ.get("PRISM_HOME")
    return Path(h).expanduser() if h else None


def data_dir() -> Path:
    """Installed models, user policies, the audit log."""
    h = _home()
    if h:
        return h
    from platformdirs import user_data_path

    return user_data_path(APP, appauthor=False)


def cache_dir() -> Path:
    """Partial downloads and other things safe to delete."""
    h = _home()
    if h:
        return h / "cache"
    from platformdirs import user_cache_path

    return user_cache_path(APP, appauthor=False)


def config_file() -> Path:
    h = _home()
    if h:
        return h / "config.yaml"
    from platformdirs import user_config_path

    return user_config_path(APP, appauthor=False) / "config.yaml"


def models_dir() -> Path:
    return data_dir() / "models"


def user_policies_dir() -> Path:
    return data_dir() / "policies"


def audit_log() -> Path:
    return data_dir() / "audit.jsonl"


def log_key() -> Path:
    """The per-install secret keying the log's text hashes (keyfile.py)."""
    return data_dir() / "log.key"


def _resource(name: str) -> Path:
    """A shipped resource: inside the wheel (prism_cli/NAME) or, in a source checkout, at the repo root."""
    inside = PACKAGE_DIR / name
    if inside.exists():
        return inside
    return _REPO_ROOT / name


def shipped_policies_dir() -> Path:
    return _resource("default_policies")


def shipped_models_dir() -> Path:
    return _resource("models")
