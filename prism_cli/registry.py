"""The model catalogue (models/registry.yaml): what `prism models pull` can fetch, pinned and hashed.

Looking a model up reads local files only: `prism check` finds its moderator with no network
and no model runtime imported. Installed models are model_store.py.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from prism_cli.errors import InputError
from prism_cli.model_store import MANIFEST, NAME_RE
from prism_cli.paths import shipped_models_dir
from prism_cli.yaml_lines import compose, line_of

REGISTRY_ENV = "PRISM_REGISTRY"
KINDS = ("classifier", "guard-llm")
MODEL_FORMATS = ("onnx", "gguf")
"""A catalogue entry's `format`: the file type of its weights."""
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = {
    "name", "kind", "format", "prompt_format", "files", "licence", "gated", "languages", "categories",
    "size", "size_bytes", "choose_when", "bundled", "classifier", "taxonomy", "custom_categories", "not_scored",
}
_FILE_KEYS = {"repo", "filename", "revision", "sha256", "size_bytes", "dest"}
_CLASSIFIER_KEYS = {"labels", "activation", "max_length", "category_map", "unsafe", "output", "roles", "windows", "threshold"}


@dataclass(frozen=True)
class FileSpec:
    """One file of a catalogue entry: where it lives on the Hub and what it must hash to."""

    repo: str
    filename: str
    revision: str | None
    sha256: str | None
    size_bytes: int | None
    dest: str

    @property
    def pinned(self) -> bool:
        return self.revision is not None and bool(COMMIT_RE.match(self.revision))


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    format: str
    files: tuple[FileSpec, ...] = ()
    prompt_format: str | None = None
    licence: str = "unknown"
    gated: bool = False
    languages: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    size: str | None = None
    size_bytes: int | None = None
    choose_when: str = ""
    bundled: bool = False
    classifier: dict[str, Any] | None = None
    taxonomy: dict[str, tuple[str, ...]] | None = None
    """A guard model's own categories -> the policy category ids each one scores."""
    custom_categories: bool = False
    """Other policy categories go into the guard's prompt as custom categories (Llama Guard)."""
    not_scored: tuple[str, ...] = ()
    """Policy ids never given to this guard (categories it was not trained for)."""

    @property
    def sha_pinned(self) -> bool:
        return all(f.sha256 for f in self.files)


def registry_file() -> Path:
    """The catalogue: $PRISM_REGISTRY if set (tests, mirrors), else the one shipped with prism."""
    env = os.environ.get(REGISTRY_ENV)
    return Path(env).expanduser() if env else shipped_models_dir() / "registry.yaml"


def load_catalogue(path: Path | None = None) -> dict[str, Entry]:
    path = path or registry_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read the model registry ({e.strerror})") from None
    raw, lines = compose(text, str(path), "the model registry")
    raw = raw or {}
    models = raw.get("models", []) if isinstance(raw, dict) else None
    if not isinstance(models, list):
        raise InputError(f"{path}: key 'models' must be a list of model entries")
    out: dict[str, Entry] = {}
    for i, item in enumerate(models):
        entry = _parse_entry(item, lambda *keys, i=i: f"{path}:{line_of(lines, ('models', i, *keys))}")
        if entry.name in out:
            raise InputError(f"{path}:{line_of(lines, ('models', i))}: duplicate model name {entry.name!r}")
        out[entry.name] = entry
    return out


def _parse_entry(item: Any, at: Callable[..., str]) -> Entry:
    """One model entry; at(*keys) is FILE:LINE of a key path inside it, for errors."""
    where = at()
    if not isinstance(item, dict):
        raise InputError(f"{where}: each model entry must be a mapping")
    unknown = set(item) - _ENTRY_KEYS
    if unknown:
        raise InputError(f"{where}: unknown key {sorted(unknown)[0]!r} in model entry")
    name = item.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InputError(f"{where}: key 'name' must be a short name of letters, digits, '.', '_' or '-'")
    if item.get("kind") not in KINDS:
        raise InputError(f"{where}: model {name!r}: key 'kind' must be one of {', '.join(KINDS)}")
    if item.get("format") not in MODEL_FORMATS:
        raise InputError(f"{where}: model {name!r}: key 'format' must be one of {', '.join(MODEL_FORMATS)}")
    bundled = bool(item.get("bundled", False))
    raw_files = item.get("files") or []
    if not isinstance(raw_files, list):
        raise InputError(f"{where}: model {name!r}: key 'files' must be a list")
    files = tuple(_parse_file(f, at("files", j), name) for j, f in enumerate(raw_files))
    if not bundled and not files:
        raise InputError(f"{where}: model {name!r}: key 'files' must list at least one file (or set bundled: true)")
    cls = item.get("classifier")
    if cls is not None:
        if not isinstance(cls, dict) or set(cls) - _CLASSIFIER_KEYS or not cls.get("labels"):
            raise InputError(f"{where}: model {name!r}: key 'classifier' needs 'labels' and only {sorted(_CLASSIFIER_KEYS)}")
    if item["kind"] == "classifier" and not bundled and cls is None:
        raise InputError(f"{where}: model {name!r}: a downloadable classifier needs a 'classifier' section (labels, ...)")
    return Entry(
        name=name, kind=item["kind"], format=item["format"], files=files,
        prompt_format=item.get("prompt_format"), licence=str(item.get("licence", "unknown")),
        gated=bool(item.get("gated", False)), languages=tuple(str(x) for x in item.get("languages") or ()),
        categories=tuple(str(x) for x in item.get("categories") or ()) or _mapped(item.get("taxonomy")), size=item.get("size"),
        size_bytes=item.get("size_bytes"), choose_when=str(item.get("choose_when", "")), bundled=bundled,
        classifier=cls or None, taxonomy=_parse_taxonomy(item.get("taxonomy"), where, name),
        custom_categories=bool(item.get("custom_categories", False)),
        not_scored=tuple(str(x) for x in item.get("not_scored") or ()),
    )


def _parse_taxonomy(raw: Any, where: str, name: str) -> dict[str, tuple[str, ...]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in raw.values()):
        raise InputError(f"{where}: model {name!r}: key 'taxonomy' must map each of the model's categories to a list of policy ids")
    return {str(k): tuple(v) for k, v in raw.items()}


def _mapped(raw: Any) -> tuple[str, ...]:
    """The policy ids a taxonomy scores, in first-seen order (what `models list` shows)."""
    if not isinstance(raw, dict):
        return ()
    return tuple(dict.fromkeys(str(i) for k, v in raw.items() if isinstance(v, list) for i in v))


def guard_entry(name: str | None, prompt_format: str) -> Entry | None:
    """The catalogue entry describing a guard: by its name, else the first with the same prompt format."""
    cat = load_catalogue()
    if name in cat and cat[name].prompt_format == prompt_format:
        return cat[name]
    return next((e for e in cat.values() if e.prompt_format == prompt_format and e.taxonomy is not None), None)


def _parse_file(f: Any, at: str, name: str) -> FileSpec:
    where = f"{at}: model {name!r}"
    if not isinstance(f, dict):
        raise InputError(f"{where}: each file must be a mapping with repo, filename, revision")
    unknown = set(f) - _FILE_KEYS
    if unknown:
        raise InputError(f"{where}: unknown key {sorted(unknown)[0]!r} in file")
    for key in ("repo", "filename"):
        if not isinstance(f.get(key), str) or not f[key]:
            raise InputError(f"{where}: file key {key!r} is required")
    rev, sha = f.get("revision"), f.get("sha256")
    if rev is not None and not (isinstance(rev, str) and COMMIT_RE.match(rev)):
        raise InputError(f"{where}: file key 'revision' must be a 40-hex commit (or null when none is known), got {rev!r}")
    if sha is not None and not (isinstance(sha, str) and SHA256_RE.match(sha)):
        raise InputError(f"{where}: file key 'sha256' must be 64 lowercase hex digits or null")
    dest = f.get("dest") or f["filename"].rsplit("/", 1)[-1]
    if "/" in dest or "\\" in dest or dest.startswith(".") or dest in (MANIFEST, "prism.json"):
        raise InputError(f"{where}: file key 'dest' must be a plain file name, got {dest!r}")
    return FileSpec(f["repo"], f["filename"], rev, sha, f.get("size_bytes"), dest)
