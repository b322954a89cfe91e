"""User configuration (config.yaml under the prism config dir): default moderator and policy, switches.

Values typed on `prism config set` are parsed here (booleans one way for every switch and for
PRISM_OFFLINE) and resolved in build.py before they are stored. The file is read once per
process (a command) and re-read only when it changes. A value that fails later (a hand-edited
file, a model removed since) is reported with the key and the file it came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ContextManager

import yaml

from prism_cli.errors import InputError, noting
from prism_cli.inputs import decode, read_bounded
from prism_cli.outputs import write_atomic
from prism_cli.paths import config_file

_MAX_BYTES = 1_000_000

KEYS: dict[str, str] = {
    "moderator": "default moderator (a registry name, model folder or .gguf file)",
    "policy": "default policy (a shipped name or a YAML file)",
    "offline": "true forbids any network access, even `models pull`",
    "log": "write the local decision log (true/false; default true)",
    "history": "keep the chat REPL's input history in chat_history, 0600 (true/false; default true)",
}
BOOL_KEYS = {"offline", "log", "history"}
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
"""The one boolean vocabulary: config switches, `config set`, and the PRISM_OFFLINE variable."""

_cache: tuple[tuple[str, int, int, int], dict[str, Any]] | None = None


def check_key(key: str) -> str:
    if key not in KEYS:
        raise InputError(f"unknown config key {key!r} (known: {', '.join(KEYS)})")
    return key


def load() -> dict[str, Any]:
    """The config as a dict (a copy). Read and parsed once while the file stays the same."""
    global _cache
    path = config_file()
    if not path.is_file():
        return {}
    st = path.stat()
    stamp = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    if _cache is None or _cache[0] != stamp:
        _cache = (stamp, _parse(path))
    return dict(_cache[1])


def _parse(path: Path) -> dict[str, Any]:
    text = decode(read_bounded(path, _MAX_BYTES, what="config file"), str(path))
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{path}: unreadable config ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: config must be a mapping of keys to values")
    return data


def get(key: str, default: Any = None) -> Any:
    return load().get(key, default)


def origin(key: str) -> str:
    """Where a configured value came from, for error messages."""
    return f"config key '{key}' in {config_file()}"


def provenance(key: str) -> ContextManager[None]:
    """Errors raised inside say that the value they failed on came from the config file."""
    return noting(f"{origin(key)}; change it with `prism config set {key} ...`")


def parse_bool(value: Any) -> bool | None:
    """True or False for a word of the one vocabulary (or a YAML boolean); None for anything else."""
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    return True if low in TRUE_WORDS else False if low in FALSE_WORDS else None


def _to_bool(key: str, value: Any) -> bool:
    parsed = parse_bool(value)
    if parsed is None:
        raise InputError(f"config key {key!r} takes true or false, got {value!r}")
    return parsed


def get_bool(key: str, default: bool) -> bool:
    """A switch from the config file; a value that is not a boolean is an error naming key and file."""
    value = get(key)
    if value is None:
        return default
    try:
        return _to_bool(key, value)
    except InputError:
        raise InputError(f"{origin(key)} takes true or false, got {value!r}") from None


def set_value(key: str, value: Any) -> Path:
    global _cache
    check_key(key)
    data = load()
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, yaml.safe_dump(data, sort_keys=True))
    _cache = None
    return path


def parse_value(key: str, raw: str) -> Any:
    """A value typed on the command line, parsed for its key (booleans stay booleans)."""
    check_key(key)
    if key in BOOL_KEYS:
        return _to_bool(key, raw)
    if not raw.strip():
        raise InputError(f"config key {key!r} needs a value (use `prism config unset {key}` to clear it)")
    return raw.strip()


def unset(key: str) -> Path:
    return set_value(key, None)


def offline() -> bool:
    """PRISM_OFFLINE=true (or 1/yes/on) forces offline; otherwise the config's `offline` decides."""
    if parse_bool(os.environ.get("PRISM_OFFLINE", "")):
        return True
    return get_bool("offline", False)
