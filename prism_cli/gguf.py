"""Reading a GGUF header without llama.cpp: is this file a whole model, and what is it?

Used before anything heavy loads (sideloading, opening a chat model) so that a wrong,
truncated or damaged file is a one-line error naming it, not a crash inside llama.cpp.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from prism_cli.errors import InputError
from prism_cli.textio import open_user_file

_GGUF_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
# ggml tensor types whose byte size we know: type id -> (elements per block, bytes per block)
_GGML_BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
               10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
               24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2)}


_STRINGS = {"general.architecture": "architecture", "general.name": "name", "general.basename": "basename",
            "tokenizer.chat_template": "chat_template"}


def read_gguf_info(path: Path) -> dict[str, Any]:
    """Check a GGUF header and return {architecture, name, basename, chat_template, tensors}; InputError if not
    GGUF or truncated. The chat template tells a guard model's prompt format (moderators/guard_template.py)."""
    size = path.stat().st_size if path.is_file() else 0
    with open_user_file(path) as f:
        def take(n: int) -> bytes:
            b = f.read(n)
            if len(b) != n:
                raise InputError(f"{path}: truncated GGUF file (ends at byte {f.tell()} of the header)")
            return b

        def num(fmt: str) -> Any:
            return struct.unpack("<" + fmt, take(struct.calcsize(fmt)))[0]

        def text() -> str:
            n = num("Q")
            if n > size:
                raise InputError(f"{path}: corrupt GGUF header (string of {n} bytes)")
            return take(n).decode("utf-8", "replace")

        def skip(vtype: int) -> None:
            if vtype == 8:
                f.seek(num("Q"), 1)
            elif vtype == 9:
                etype, count = num("I"), num("Q")
                if etype in _GGUF_SCALAR:
                    f.seek(count * struct.calcsize(_GGUF_SCALAR[etype]), 1)
                else:
                    for _ in range(count):
                        skip(etype)
            elif vtype in _GGUF_SCALAR:
                take(struct.calcsize(_GGUF_SCALAR[vtype]))
            else:
                raise InputError(f"{path}: corrupt GGUF header (unknown value type {vtype})")

        magic = f.read(4)
        if magic != b"GGUF":
            raise InputError(f"{path}: not a GGUF file (starts with {magic!r}, expected b'GGUF')")
        version = num("I")
        if version not in (2, 3):
            raise InputError(f"{path}: unsupported GGUF version {version}")
        n_tensors, n_kv = num("Q"), num("Q")
        info: dict[str, Any] = {"version": version, "tensors": n_tensors, "alignment": 32}
        for _ in range(n_kv):
            key, vtype = text(), num("I")
            if key in _STRINGS and vtype == 8:
                info[_STRINGS[key]] = text()
            elif key == "general.alignment" and vtype == 4:
                info["alignment"] = num("I")
            else:
                skip(vtype)
        end = 0
        for _ in range(n_tensors):
            text()
            dims = [num("Q") for _ in range(num("I"))]
            ttype, offset = num("I"), num("Q")
            count = 1
            for d in dims:
                count *= d
            per, nbytes = _GGML_BLOCK.get(ttype, (0, 0))
            end = max(end, offset + (count // per * nbytes if per else 0))
        align = info["alignment"] or 32
        data_start = -(-f.tell() // align) * align
    if n_tensors and data_start + end > size:
        raise InputError(f"{path}: truncated GGUF file ({size} bytes, tensor data needs {data_start + end})")
    if "architecture" not in info:
        raise InputError(f"{path}: GGUF file without general.architecture; not a model")
    return info
