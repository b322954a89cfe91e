"""Model catalogue (models/registry.yaml) and installed models (models_dir()/<name>/manifest.json).

Looking a model up reads local files only: `prism check` finds its moderator with no network
and no model runtime imported. Each installed model keeps a manifest of its files with size and
sha256, so `verify` can re-hash them and a swapped or damaged file is caught.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable


from prism_cli.errors import InputError
from prism_cli.outputs import write_atomic
from prism_cli.paths import models_dir, shipped_models_dir
from prism_cli.yaml_lines import compose, line_of

REGISTRY_ENV = "PRISM_REGISTRY"
MANIFEST = "manifest.json"
KINDS = ("classifier", "guard-llm")
MODEL_FORMATS = ("onnx", "gguf")
"""A catalogue entry's `format`: the file type of its weights."""
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
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


# ---- installed models --------------------------------------------------------------------------


@dataclass
class Installed:
    """An installed model: its folder and manifest. `.path` is what the moderator loader opens."""

    name: str
    folder: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "classifier"))

    @property
    def path(self) -> Path:
        main = self.manifest.get("main")
        return self.folder / main if main else self.folder

    @property
    def prompt_format(self) -> str | None:
        return self.manifest.get("prompt_format")

    @property
    def size(self) -> int:
        return sum(int(f.get("size", 0)) for f in self.manifest.get("files", []))


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise InputError(f"bad model name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


def model_dir(name: str) -> Path:
    return models_dir() / check_name(name)


def find_installed(name: str) -> Installed | None:
    """The installed model called `name`, or None. Local files only; never raises on a bad name."""
    if not NAME_RE.match(name or ""):
        return None
    folder = models_dir() / name
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    return Installed(name, folder, manifest)


def list_installed() -> list[Installed]:
    root = models_dir()
    if not root.is_dir():
        return []
    found = (find_installed(p.name) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
    return [m for m in found if m is not None]


def remove(name: str) -> Path:
    inst = find_installed(check_name(name))
    if inst is None:
        raise InputError(f"model {name!r} is not installed (prism models list)")
    trash = inst.folder.with_name(f".{name}.rm-{uuid.uuid4().hex[:8]}")
    os.replace(inst.folder, trash)  # the model disappears at once; deleting the bytes comes after
    shutil.rmtree(trash, ignore_errors=True)
    return inst.folder


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(inst: Installed) -> list[str]:
    """Re-hash every file in the manifest; one line per problem (empty list: all good)."""
    problems = []
    files = inst.manifest.get("files") or []
    if not files:
        problems.append(f"{inst.name}: manifest lists no files")
    for f in files:
        p = inst.folder / str(f.get("path", ""))
        if not p.is_file():
            problems.append(f"{inst.name}: {f.get('path')} is missing")
            continue
        if f.get("size") is not None and p.stat().st_size != int(f["size"]):
            problems.append(f"{inst.name}: {f['path']} has {p.stat().st_size} bytes, manifest says {f['size']}")
            continue
        got = sha256_file(p)
        if got != f.get("sha256"):
            problems.append(f"{inst.name}: {f['path']} sha256 {got[:16]}... does not match the manifest {str(f.get('sha256'))[:16]}...")
    return problems


def new_manifest(name: str, kind: str, fmt: str, source: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return {"name": name, "kind": kind, "format": fmt, "source": source, "installed_at": now, "files": [], **extra}


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def staging_dir(name: str) -> Path:
    """A private folder next to the final one (same filesystem, so publishing is one rename)."""
    d = models_dir() / f".{check_name(name)}.staging-{uuid.uuid4().hex[:8]}"
    d.mkdir(parents=True)
    return d


def publish(staging: Path, name: str, manifest: dict[str, Any]) -> Installed:
    """Write the manifest last, then swap the staging folder in: a model is whole or absent."""
    write_json(staging / MANIFEST, manifest)
    final = model_dir(name)
    old = None
    if final.exists():
        old = final.with_name(f".{name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return Installed(name, final, manifest)


def file_record(folder: Path, rel: str, sha256: str, **extra: Any) -> dict[str, Any]:
    return {"path": rel, "sha256": sha256, "size": (folder / rel).stat().st_size, **extra}
