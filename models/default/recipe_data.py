"""Data loading for the bundled default moderator's recipe (models/default/train.py).

Reads the public sets in ../shared/data that its README marks **Train** (never the Eval-only
ones), gives every row a binary label, a set of category labels and a "kind" (what sort of
text it is, used to build the held-out evaluation sets), deduplicates across all sets on
normalised text, and splits train / val / test by a hash of that normalised text, so a
text (and any of its duplicates in other sets) lands in exactly one split.

The data folder is `<repo>/../shared/data`, or the folder in the env var PRISM_DATA.
Nothing here is copied into the project: files are read at training time.

This module owns dedup and splitting; rows, labels and the guarded reader are in recipe_rows.py,
one loader per set in recipe_sources.py, templated rows in recipe_templates.py.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from pathlib import Path
from typing import Callable, Iterable

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # sibling modules, also when loaded by file path (tests)
    sys.path.insert(0, str(HERE))

# Re-exported: train.py and the tests use them as recipe_data.<name>.
from recipe_rows import (  # noqa: E402,F401
    CATEGORIES, CATEGORY_MAP, EXPORT_CATEGORY_MAP, EVAL_ONLY, EVAL_ONLY_FILES, KINDS, LABELS, READ_LOG, Row, _path, data_dir, keyword_cats,
)
from recipe_sources import (  # noqa: E402,F401
    load_advbench, load_benign_instructions, load_bipia, load_coconot, load_cyberseceval, load_do_not_answer,
    load_handwritten, load_harmbench, load_injections, load_jailbreaks, load_medquad, load_multijail,
    load_red_instruct, load_refusal_harmful, load_strongreject, load_tdc2023,
)
from recipe_sources_content import (  # noqa: E402,F401
    clean_tweet, load_convabuse, load_davidson, load_hatexplain, load_mlma_hate, load_paradetox, load_rtp,
    load_toxic_spans, load_toxigen,
)
from recipe_sources_responses import load_diasafety, load_gptfuzz, load_safetext  # noqa: E402
from recipe_templates import load_templates  # noqa: E402


def _load_handwritten_v2() -> Iterable[Row]:
    """Hand-written and templated rows of 2.x (models/default/data/, handwritten.py)."""
    import handwritten

    return handwritten.load_all()


LOADERS: dict[str, Callable[[], Iterable[Row]]] = {
    "advbench": load_advbench, "harmbench": load_harmbench, "strongreject": load_strongreject,
    "tdc2023": load_tdc2023, "refusal_direction_splits": load_refusal_harmful, "do_not_answer": load_do_not_answer,
    "multijail": load_multijail, "coconot": load_coconot, "cyberseceval": load_cyberseceval,
    "red_instruct_harmfulqa": load_red_instruct, "medquad_drugs": load_medquad,
    "davidson_hate_offensive": load_davidson, "toxigen_seeds": load_toxigen, "realtoxicityprompts_challenging": load_rtp,
    "paradetox": load_paradetox, "toxic_spans": load_toxic_spans, "hatexplain_mbib": load_hatexplain,
    "convabuse": load_convabuse, "mlma_hate": load_mlma_hate,
    "gptfuzz_labeled_responses": load_gptfuzz, "diasafety": load_diasafety, "safetext": load_safetext,
    "jailbreaks": load_jailbreaks, "injections": load_injections, "bipia": load_bipia,
    "benign_instructions": load_benign_instructions, "handwritten": load_handwritten,
    "templates": load_templates, "handwritten_v2": _load_handwritten_v2,
}


# ---------------------------------------------------------------- dedup and split
def normalize(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    t = re.sub(r"[^\w]+", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def dedup(rows: Iterable[Row]) -> list[Row]:
    """One row per normalised text. A text labelled unsafe anywhere stays unsafe (categories
    are merged); `sources` lists every set that held it."""
    seen: dict[str, Row] = {}
    for r in rows:
        key = normalize(r.text)
        if len(key) < 3:
            continue
        old = seen.get(key)
        if old is None:
            r.sources = [r.source]
            seen[key] = r
            continue
        old.sources.append(r.source)
        if r.label > old.label:
            r.sources = old.sources
            seen[key] = r
        elif r.label == old.label == 1:
            old.cats = old.cats | r.cats
    return list(seen.values())


def split_of(text: str, val: float = 0.1, test: float = 0.15) -> str:
    h = int(hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "val" if h < test + val else "train"


HELDOUT_LOOKALIKES = HERE.parents[1] / "tests" / "data" / "benign_lookalikes.txt"
HELDOUT_PROBES = HERE.parents[1] / "tests" / "data" / "harmful_probes.txt"
HELDOUT_DIR = HERE.parents[1] / "tests" / "data" / "probes"


def heldout_texts() -> list[str]:
    """Texts of the hand-written evaluation-only files (tests/data: 1.0's look-alikes and probes, and
    the probes/ folder written before 2.0 was trained). The text is the last TAB field of a line."""
    files = [HELDOUT_LOOKALIKES, HELDOUT_PROBES] + (sorted(HELDOUT_DIR.glob("*.t*")) if HELDOUT_DIR.is_dir() else [])
    out = []
    for f in files:
        if f.is_file():
            out += [ln.split("\t")[-1] for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    return out


def heldout_keys() -> set[str]:
    """Normalised held-out texts (a training row equal to one of them is dropped, and so is a near-copy:
    recipe_decontaminate.py)."""
    return {normalize(t) for t in heldout_texts()}


DROPPED_NEAR_COPIES: list[str] = []  # sources of the rows load_all dropped as near-copies (for the log)


def load_all(only: Iterable[str] | None = None, limit: int | None = None) -> list[Row]:
    rows: list[Row] = []
    for name, fn in LOADERS.items():
        if only is not None and name not in only:
            continue
        got = list(fn())
        rows.extend(got[:limit] if limit else got)
    from recipe_decontaminate import NearCopies

    held = heldout_keys()
    rows = [r for r in rows if normalize(r.text) not in held]
    keep, drop = NearCopies(heldout_texts()).split([r.text for r in rows])
    DROPPED_NEAR_COPIES[:] = [rows[i].source for i in drop]
    return dedup(rows[i] for i in keep)


def split(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {"train": [], "val": [], "test": []}
    for r in rows:
        out[split_of(r.text)].append(r)
    return out
