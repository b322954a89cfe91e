"""Installed models: one folder each under models_dir()/<name>/, with a manifest.json of its files.

Each manifest lists every file with size and sha256, so `verify` can re-hash them and a swapped or
damaged file is caught; a model is published by one rename, so it is whole or absent. The catalogue
of what can be pulled is registry.py.
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
from typing import Any

from prism_cli.errors import InputError
from prism_cli.outputs import write_json
from prism_cli.paths import models_dir

MANIFEST = "manifest.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
