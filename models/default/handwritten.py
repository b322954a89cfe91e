"""Loaders for the hand-written training files in models/default/data/: each yields `Row`s.

Why a module of its own: these files teach intent rather than topic words (benign look-alikes,
harmful requests per category, everyday prompts, reply openings, harmful vs safe responses,
other languages), and their label vocabulary is the 2.0 model's, wider than recipe_rows.LABELS.
A malformed line fails loudly with file:line, so a typo never silently becomes a training row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from recipe_rows import Row

DATA = Path(__file__).resolve().parent / "data"

# The 2.0 model's labels: "unsafe" is the overall head, the rest are category heads.
LABELS = (
    "unsafe", "violent", "crime", "sex_crime", "child", "defamation", "specialized_advice", "privacy", "ip",
    "weapons", "hate", "self_harm", "sexual", "elections", "cyber", "jailbreak", "toxic",
)
CATEGORIES = LABELS[1:]
SAFE_KINDS = ("refusal", "redirect", "helpful")  # first field of responses_safe.tsv


# Companion tags written after 2.0.3 and measured one by one: loaded only when named in ENABLED
# (train.py --with TAG), so that each can be left out to measure what it brings. "safety" (safety
# questions about hazards and their harmful twins) cut 2.0.3's false positives on held-out safety
# questions from 0.18 to 0.05 (CARD_NOTES, "Tried after 2.0.3"); "s34c" (a fourth pass of intent-only
# S3/S4 requests and look-alikes) is measured in CARD_NOTES, "S3/S4 rows, fourth pass". 2.1.0 trains on
# both (SHIPPED_WITH, train.py's default).
OPT_IN = frozenset({"safety", "s34c"})
SHIPPED_WITH = frozenset({"safety", "s34c"})
ENABLED: set[str] = set()


def files(name: str) -> list[str]:
    """data/<name> and its companions data/<stem>_<tag><suffix>, in name order: rows written later, or by
    other hands, go in a file of their own (e.g. hard_negatives_s34.tsv) and load with the first. An
    OPT_IN tag loads only when it is in ENABLED."""
    stem, dot, suffix = name.rpartition(".")
    tags = {p.name: p.name[len(stem) + 1 : -len(dot + suffix)] for p in DATA.glob(f"{stem}_*{dot}{suffix}")}
    return [name] + sorted(f for f, tag in tags.items() if tag not in OPT_IN or tag in ENABLED)


def _lines(name: str) -> Iterator[tuple[str, int, str]]:
    """(file, line number, line) for every non-blank line of data/<name> and its companions that is not
    a comment: '# ' starts a comment, so a reply opening like '## Overview' (a heading) stays a row."""
    for f in files(name):
        for n, line in enumerate((DATA / f).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not (line.startswith("# ") or line.strip() == "#"):
                yield f, n, line


def _fields(name: str) -> Iterator[tuple[str, int, str, str]]:
    """(file, line number, key, text) for each `key<TAB>text` line; anything else is an error naming file:line."""
    for f, n, line in _lines(name):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"{DATA / f}:{n}: expected 'key<TAB>text', got {len(parts)} field(s)")
        yield f, n, parts[0].strip(), parts[1].strip()


def _cats(name: str, n: int, key: str) -> frozenset[str]:
    labels = [x.strip() for x in key.split(",")]
    unknown = [x for x in labels if x not in LABELS]
    if unknown:
        raise ValueError(f"{DATA / name}:{n}: unknown label(s) {', '.join(unknown)}")
    return frozenset(labels) - {"unsafe"}


def load_hard_negatives() -> Iterator[Row]:
    for f, n, topic, text in _fields("hard_negatives.tsv"):
        _cats(f, n, topic)  # the topic must be a label name
        yield Row(text, 0, frozenset(), "handwritten/hard_negatives", "lookalike")


def load_harmful_requests() -> Iterator[Row]:
    for f, n, labels, text in _fields("harmful_requests.tsv"):
        yield Row(text, 1, _cats(f, n, labels), "handwritten/harmful_requests", "request")


def load_responses_harmful() -> Iterator[Row]:
    for f, n, labels, text in _fields("responses_harmful.tsv"):
        yield Row(text, 1, _cats(f, n, labels), "handwritten/responses_harmful", "response")


def load_responses_safe() -> Iterator[Row]:
    for f, n, kind, text in _fields("responses_safe.tsv"):
        if kind not in SAFE_KINDS:
            raise ValueError(f"{DATA / f}:{n}: kind must be one of {', '.join(SAFE_KINDS)}")
        yield Row(text, 0, frozenset(), "handwritten/responses_safe", "response")


def load_everyday() -> Iterator[Row]:
    for _, _, line in _lines("everyday.txt"):
        yield Row(line.strip(), 0, frozenset(), "handwritten/everyday", "benign")


def load_reply_openings() -> Iterator[Row]:
    for _, _, line in _lines("reply_openings.txt"):
        yield Row(line.strip(), 0, frozenset(), "handwritten/reply_openings", "response")


def load_multilingual() -> Iterator[Row]:
    for _, _, _lang, text in _fields("multilingual_benign.tsv"):
        yield Row(text, 0, frozenset(), "handwritten/multilingual_benign", "benign")


LOADERS = (
    load_hard_negatives, load_harmful_requests, load_everyday, load_reply_openings,
    load_responses_harmful, load_responses_safe, load_multilingual,
)


def load_all() -> Iterator[Row]:
    """Every hand-written row, file by file."""
    for loader in LOADERS:
        yield from loader()
