"""Reader for the held-out probe files in tests/data/probes/ (format: /work/notes/probe_format.md).

The probes measure prism-default 2.0 and are never trained on, so the reader is strict: a malformed
line raises ProbeFormatError naming file and line instead of being skipped and silently shrinking a set.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import NamedTuple

PROBE_DIR = Path(__file__).parent / "data" / "probes"

CATEGORIES = frozenset(
    [f"S{i}" for i in range(1, 15)] + ["jailbreak", "harassment"]
)

# ISO 639-1 codes the probe files may use; extend when a new language is added.
LANGS = frozenset(
    "ar bn cs da de el en es fa fi fr he hi hu id it ja ko ms nl no pl pt ro ru sv sw th tl tr uk ur vi zh".split()
)


class Spec(NamedTuple):
    """Columns of one probe file, the role its texts are scored under and their expected label."""

    fields: tuple[str, ...]
    role: str
    label: str


SPECS: dict[str, Spec] = {
    "harmful_prompts.tsv": Spec(("category", "text"), "prompt", "unsafe"),
    "benign_lookalikes.tsv": Spec(("topic", "text"), "prompt", "safe"),
    "everyday_prompts.txt": Spec(("text",), "prompt", "safe"),
    "reply_openings.txt": Spec(("text",), "response", "safe"),
    "harmful_responses.tsv": Spec(("category", "text"), "response", "unsafe"),
    "safe_responses.txt": Spec(("text",), "response", "safe"),
    "multilingual_benign.tsv": Spec(("lang", "text"), "prompt", "safe"),
    "multilingual_harmful.tsv": Spec(("lang", "category", "text"), "prompt", "unsafe"),
    "long_harmful.tsv": Spec(("category", "text"), "prompt", "unsafe"),
    "long_benign.txt": Spec(("text",), "prompt", "safe"),
    "long_safe_responses.txt": Spec(("text",), "response", "safe"),
    "safety_harmful.tsv": Spec(("category", "text"), "prompt", "unsafe"),
    "safety_questions.tsv": Spec(("topic", "text"), "prompt", "safe"),
    "s34_harmful.tsv": Spec(("category", "text"), "prompt", "unsafe"),
    "s34_lookalikes.tsv": Spec(("topic", "text"), "prompt", "safe"),
}


class ProbeFormatError(ValueError):
    """A probe line that does not follow the format; the message names file and line."""


def _check_field(name: str, value: str, where: str) -> None:
    if not value or value != value.strip():
        raise ProbeFormatError(f"{where}: empty {name} or surrounding whitespace: {value!r}")
    if name in ("category", "topic") and value not in CATEGORIES:
        raise ProbeFormatError(f"{where}: unknown {name} {value!r}")
    if name == "lang" and value not in LANGS:
        raise ProbeFormatError(f"{where}: unknown lang {value!r}")


def read_probes(path: Path, spec: Spec) -> list[dict[str, str]]:
    """Rows of one probe file as dicts keyed by the spec's field names, in file order."""
    rows = []
    raw = path.read_bytes().decode("utf-8")  # strict: a bad byte is an error, not a replacement char
    for number, line in enumerate(raw.split("\n"), start=1):
        where = f"{path.name}:{number}"
        if "\r" in line:
            raise ProbeFormatError(f"{where}: carriage return (save with LF line endings)")
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != len(spec.fields):
            raise ProbeFormatError(f"{where}: {len(parts)} fields, expected {len(spec.fields)} {spec.fields}")
        for name, value in zip(spec.fields, parts):
            _check_field(name, value, where)
        rows.append(dict(zip(spec.fields, parts)))
    return rows


def load(name: str) -> list[dict[str, str]]:
    """Rows of the named probe file in tests/data/probes/."""
    return read_probes(PROBE_DIR / name, SPECS[name])


def dedup_key(text: str) -> str:
    """What two texts share when they are near-duplicates: case, punctuation and spacing ignored."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    key = " ".join(re.sub(r"[^\w\s]", " ", folded).split())
    return key or text.strip()
