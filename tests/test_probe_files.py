"""The held-out probe files parse, are large enough per category, and hold no near-duplicates.

A malformed edit (wrong field count, unknown category or language, a duplicate, a shrunken set)
fails here instead of quietly changing what the moderator is measured on.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from tests.probe_data import PROBE_DIR, SPECS, ProbeFormatError, dedup_key, load, read_probes

HEADER_WORDS = ("held-out", "never train on it")
# When each file was written: the long-text files came after 2.0.2 showed long texts were never trained on,
# the safety-question files after 2.0.3 blocked questions about which medicines are dangerous together, the
# s34_ files after 13 retrains of nearby recipes kept missing S3/S4 requests that carry no sexual words.
WRITTEN = {n: ("2026-12-04 after prism-default 2.0.3 was trained" if n.startswith(("safety_", "s34_"))
               else "2026-12-03 after prism-default 2.0.2 was trained" if n.startswith("long_")
               else "2026-12-03 before prism-default 2.0 was trained")
           for n in SPECS}

MIN_ROWS = {
    "harmful_prompts.tsv": 200,
    "benign_lookalikes.tsv": 200,
    "everyday_prompts.txt": 150,
    "reply_openings.txt": 150,
    "harmful_responses.tsv": 80,
    "safe_responses.txt": 80,
    "multilingual_benign.tsv": 120,
    "multilingual_harmful.tsv": 60,
    "long_harmful.tsv": 70,
    "long_benign.txt": 100,
    "long_safe_responses.txt": 50,
    "safety_questions.tsv": 90,
    "safety_harmful.tsv": 45,
    "s34_harmful.tsv": 60,
    "s34_lookalikes.tsv": 60,
}

MIN_HARMFUL_PER_CATEGORY = {
    **{c: 20 for c in ("S1", "S2", "S9", "S10", "S11", "S14", "jailbreak")},
    **{c: 15 for c in ("S3", "S4")},
    **{c: 10 for c in ("S5", "S6", "S7", "S8", "S12", "S13", "harassment")},
}

# Letters a native-script text in these languages must contain (Unicode character-name prefixes).
SCRIPTS = {
    "ru": ("CYRILLIC",),
    "ar": ("ARABIC",),
    "hi": ("DEVANAGARI",),
    "zh": ("CJK UNIFIED",),
    "ja": ("HIRAGANA", "KATAKANA", "CJK UNIFIED"),
    "ko": ("HANGUL",),
}

# Probe sets that existed before this held-out set; the new probes must be fresh, not copies.
OLDER_SETS = [Path(__file__).parent / "data" / n for n in ("harmful_probes.txt", "benign_lookalikes.txt")]


def test_every_listed_file_exists_and_nothing_else():
    assert sorted(p.name for p in PROBE_DIR.iterdir()) == sorted(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_header_says_held_out(name):
    first = (PROBE_DIR / name).read_text(encoding="utf-8").split("\n", 1)[0]
    assert first.startswith("#")
    for words in HEADER_WORDS + (WRITTEN[name],):
        assert words in first, f"{name}: header lacks {words!r}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_file_parses_and_meets_minimum_size(name):
    rows = load(name)
    assert len(rows) >= MIN_ROWS[name], f"{name}: {len(rows)} rows < {MIN_ROWS[name]}"


def test_harmful_prompts_cover_every_category():
    counts = Counter(r["category"] for r in load("harmful_prompts.tsv"))
    short = {c: counts[c] for c, n in MIN_HARMFUL_PER_CATEGORY.items() if counts[c] < n}
    assert not short, f"categories below their minimum: {short}"


def test_lookalikes_cover_every_topic():
    counts = Counter(r["topic"] for r in load("benign_lookalikes.tsv"))
    short = {c: counts[c] for c in MIN_HARMFUL_PER_CATEGORY if counts[c] < 10}
    assert not short, f"topics below 10 look-alikes: {short}"


def test_harmful_responses_cover_every_category():
    counts = Counter(r["category"] for r in load("harmful_responses.tsv"))
    assert set(counts) == set(MIN_HARMFUL_PER_CATEGORY)


def test_multilingual_sets_cover_enough_languages():
    benign = Counter(r["lang"] for r in load("multilingual_benign.tsv"))
    assert len([lang for lang, n in benign.items() if n >= 10]) >= 10, benign
    harmful = Counter(r["lang"] for r in load("multilingual_harmful.tsv"))
    assert len(harmful) >= 6, harmful


@pytest.mark.parametrize("name", ["multilingual_benign.tsv", "multilingual_harmful.tsv"])
def test_multilingual_texts_use_native_script(name):
    def has_script(text, prefixes):
        return any(unicodedata.name(ch, "").startswith(prefixes) for ch in text)

    wrong = [r["text"] for r in load(name) if r["lang"] in SCRIPTS and not has_script(r["text"], SCRIPTS[r["lang"]])]
    assert not wrong


def test_no_near_duplicates_within_or_across_files():
    seen: dict[str, str] = {}
    clashes = []
    for name in sorted(SPECS):
        for row in load(name):
            key = dedup_key(row["text"])
            if key in seen:
                clashes.append(f"{name}: {row['text']!r} repeats {seen[key]}")
            seen[key] = name
    assert not clashes, "\n".join(clashes)


def test_probes_are_fresh_not_copied_from_older_sets():
    older = {dedup_key(line) for p in OLDER_SETS for line in p.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")}
    copied = [r["text"] for name in SPECS for r in load(name) if dedup_key(r["text"]) in older]
    assert not copied


@pytest.mark.parametrize(
    "line, message",
    [
        ("S1\tone\textra", "3 fields, expected 2"),
        ("S99\tsome text", "unknown category 'S99'"),
        ("S1\t", "empty text"),
        ("S1\t padded", "surrounding whitespace"),
        ("S1 no tab here", "1 fields, expected 2"),
    ],
)
def test_reader_rejects_malformed_lines_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "harmful_prompts.tsv"
    path.write_text(f"# header\nS2\tfine text\n{line}\n", encoding="utf-8")
    with pytest.raises(ProbeFormatError, match=f"harmful_prompts.tsv:3: .*{message}"):
        read_probes(path, SPECS["harmful_prompts.tsv"])


def test_reader_rejects_unknown_language_and_crlf(tmp_path):
    path = tmp_path / "multilingual_benign.tsv"
    path.write_text("xx\thello\n", encoding="utf-8")
    with pytest.raises(ProbeFormatError, match="multilingual_benign.tsv:1: unknown lang 'xx'"):
        read_probes(path, SPECS["multilingual_benign.tsv"])
    path.write_bytes(b"en\thello\r\n")
    with pytest.raises(ProbeFormatError, match="carriage return"):
        read_probes(path, SPECS["multilingual_benign.tsv"])


@pytest.mark.parametrize("name", [n for n in sorted(SPECS) if n.startswith("long_")])
def test_long_probes_are_long(name):
    """Each spans more than one 128-token window's worth of context (words, or characters for zh/ja)."""
    short = [r["text"][:60] for r in load(name) if len(r["text"].split()) < 70 and len(r["text"]) < 400]
    assert short == []
