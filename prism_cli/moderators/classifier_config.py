"""prism.json of a classifier folder: read, validated key by key, and checked against model.onnx.

A model folder may come from anywhere (`prism models add`), so every key is checked
before the model can decide anything: a folder whose map scores nothing would allow
every text, and one whose labels do not line up with the model's output columns would
report one category's probability as another's. Errors name the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prism_cli.errors import ModeratorError

CONFIG = "prism.json"
ACTIVATIONS = ("sigmoid", "softmax", "none")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MAX_LENGTH_LIMIT = 1 << 20


def _fail(path: Path, key: str, msg: str) -> ModeratorError:
    return ModeratorError(f"{path}: key '{key}' {msg}")


def _label_ref(path: Path, key: str, value: Any, labels: list[str]) -> None:
    if not isinstance(value, str) or value not in labels:
        raise _fail(path, key, f"must name one of the labels ({', '.join(labels)}), got {value!r}")


def read_config(folder: Path) -> dict[str, Any]:
    """The folder's prism.json, validated. Raises ModeratorError naming the file and key."""
    cfg_path = folder / CONFIG
    for f in (folder / "model.onnx", folder / "tokenizer.json", cfg_path):
        if not f.is_file():
            raise ModeratorError(f"{folder}: not a classifier model folder (missing {f.name})")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModeratorError(f"{cfg_path}: unreadable ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(cfg, dict):
        raise ModeratorError(f"{cfg_path}: must be a JSON object")
    labels = cfg.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise _fail(cfg_path, "labels", "must be a non-empty list of strings")
    if len(set(labels)) != len(labels):
        raise _fail(cfg_path, "labels", "has a label twice")
    for key in ("name", "version", "output"):
        if key in cfg and (not isinstance(cfg[key], str) or not cfg[key].strip()):
            raise _fail(cfg_path, key, f"must be a non-empty string, got {cfg[key]!r}")
    if cfg.get("activation", "sigmoid") not in ACTIVATIONS:
        raise _fail(cfg_path, "activation", f"must be one of {', '.join(ACTIVATIONS)}, got {cfg.get('activation')!r}")
    if not isinstance(cfg.get("preoptimized", False), bool):
        raise _fail(cfg_path, "preoptimized", f"must be true or false, got {cfg['preoptimized']!r}")
    n = cfg.get("max_length", 128)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_LENGTH_LIMIT:
        raise _fail(cfg_path, "max_length", f"must be a positive integer (tokens), got {n!r}")
    cmap = cfg.get("category_map", {})
    if not isinstance(cmap, dict):
        raise _fail(cfg_path, "category_map", "must map labels to policy category ids")
    for label, target in cmap.items():
        _label_ref(cfg_path, f"category_map.{label}", label, labels)
        ids = [target] if isinstance(target, str) else target
        if not isinstance(ids, list) or not ids or not all(isinstance(c, str) and c.strip() for c in ids):
            raise _fail(cfg_path, f"category_map.{label}", f"must be a category id or a list of them, got {target!r}")
    unsafe = cfg.get("unsafe")
    if isinstance(unsafe, dict):
        if set(unsafe) != {"one_minus"}:
            raise _fail(cfg_path, "unsafe", f"must be a label, {{\"one_minus\": label}} or null, got {unsafe!r}")
        _label_ref(cfg_path, "unsafe.one_minus", unsafe["one_minus"], labels)
    elif unsafe is not None:
        _label_ref(cfg_path, "unsafe", unsafe, labels)
    if not cmap and unsafe is None:
        raise _fail(cfg_path, "category_map", "is empty and 'unsafe' is not set: the model would score nothing "
                    "and allow every text")
    return cfg


def check_session(session: Any, cfg: dict[str, Any], folder: Path) -> str:
    """Check a loaded onnxruntime session against prism.json; returns the output name to read."""
    cfg_path = folder / CONFIG
    names = [i.name for i in session.get_inputs()]
    unknown = [n for n in names if n not in INPUTS]
    if unknown or "input_ids" not in names:
        raise ModeratorError(f"{folder / 'model.onnx'}: inputs {names} (expected input_ids, and optionally "
                             "attention_mask, token_type_ids)")
    outs = {o.name: o for o in session.get_outputs()}
    output = cfg.get("output") or next(iter(outs))
    if output not in outs:
        raise _fail(cfg_path, "output", f"names no output of model.onnx (it has {', '.join(outs)}), got {output!r}")
    shape = outs[output].shape
    width = shape[-1] if shape else None
    if not isinstance(width, int):  # a symbolic width: ask the model itself
        import numpy as np

        one = np.ones((1, 1), dtype=np.int64)
        width = session.run([output], {n: one for n in names})[0].shape[-1]
    if width != len(cfg["labels"]):
        raise _fail(cfg_path, "labels", f"lists {len(cfg['labels'])} labels, but model.onnx output {output!r} "
                    f"has {width} columns")
    return output
