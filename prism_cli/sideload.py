"""Sideloading a local model (air-gapped machines): check its format, copy it in, record sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from prism_cli.errors import InputError
from prism_cli.gguf import read_gguf_info
from prism_cli.model_store import Installed, check_name, file_record, new_manifest, publish, staging_dir
from prism_cli.registry import load_catalogue


def _copy_hashing(src: Path, dst: Path) -> str:
    h = hashlib.sha256()
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while block := fi.read(1 << 20):
            h.update(block)
            fo.write(block)
        fo.flush()
        os.fsync(fo.fileno())
    return h.hexdigest()


def _check_onnx_folder(folder: Path) -> None:
    """prism.json valid key by key, the tokenizer and model load, and the model's output has one
    column per label (classifier_config.py)."""
    from prism_cli.errors import ModeratorError
    from prism_cli.moderators.classifier_config import check_session, read_config

    try:
        cfg = read_config(folder)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        Tokenizer.from_file(str(folder / "tokenizer.json"))
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        check_session(ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"]),
                      cfg, folder)
    except ModeratorError as e:
        raise InputError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - onnxruntime/tokenizers raise many types; one line for the user
        raise InputError(f"{folder}: not a loadable classifier ({str(e).splitlines()[0][:200]})") from None


def add_local(src: Path, name: str, prompt_format: str | None = None) -> Installed:
    """Install a local .gguf file or ONNX classifier folder under `name`, recording sha256 of every file.

    When `name` is a catalogue entry with a published sha256, the file must match it.
    """
    check_name(name)
    from prism_cli.moderators.loader import RESERVED

    if name in RESERVED:
        raise InputError(f"{name!r} is reserved (--moderator {name} means the built-in {name} moderator); choose another name")
    from prism_cli.moderators.guard_formats import PROMPT_FORMATS, unknown_format

    if prompt_format is not None and prompt_format not in PROMPT_FORMATS:
        raise InputError(unknown_format(prompt_format))
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    entry = load_catalogue().get(name)
    if entry is not None and entry.bundled:
        raise InputError(f"{name!r} is bundled with prism; choose another name")
    staging = staging_dir(name)
    try:
        if src.is_file():
            info = read_gguf_info(src)
            dest = src.name if src.suffix == ".gguf" else f"{name}.gguf"
            digest = _copy_hashing(src, staging / dest)
            if entry is not None and len(entry.files) == 1 and entry.files[0].sha256 not in (None, digest):
                raise InputError(f"{src}: sha256 {digest[:16]}... is not the registry's for {name!r} "
                                 f"({entry.files[0].sha256[:16]}...); wrong file?")  # type: ignore[index]
            pf = prompt_format or (entry.prompt_format if entry else None)
            manifest = new_manifest(name, "guard-llm", "gguf", f"sideload:{src.resolve()}", main=dest,
                                    prompt_format=pf, gguf={k: info.get(k) for k in ("architecture", "name", "version")})
            manifest["files"].append(file_record(staging, dest, digest))
        else:
            _check_onnx_folder(src)
            manifest = new_manifest(name, "classifier", "onnx", f"sideload:{src.resolve()}")
            for p in sorted(q for q in src.rglob("*") if q.is_file()):
                rel = p.relative_to(src).as_posix()
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                manifest["files"].append(file_record(staging, rel, _copy_hashing(p, staging / rel)))
        return publish(staging, name, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
