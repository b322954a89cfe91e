"""The hand-written training files in models/default/data/ (field counts, known labels, no duplicates,
minimum sizes per label) and the obfuscation augmenter that the trainer applies to them."""

from __future__ import annotations

import importlib.util
import random
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "models" / "default"


def _load(name: str):
    if str(MODEL_DIR) not in sys.path:  # handwritten imports recipe_rows as a sibling, like train.py does
        sys.path.insert(0, str(MODEL_DIR))
    spec = importlib.util.spec_from_file_location(name, MODEL_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


hw = _load("handwritten")
ob = _load("obfuscation")
from recipe_rows import KINDS  # noqa: E402  (on sys.path after _load)

ALL = list(hw.load_all())
MIN_ROWS = {
    "load_hard_negatives": 600, "load_harmful_requests": 600, "load_everyday": 500, "load_reply_openings": 400,
    "load_responses_harmful": 250, "load_responses_safe": 350, "load_multilingual": 300,
}
MIN_REQUESTS = {"child": 60, "sex_crime": 50, "jailbreak": 40, **{c: 40 for c in hw.CATEGORIES
                                                                  if c not in ("child", "sex_crime", "jailbreak")}}
FRAME = re.compile(r"novel|story|screenplay|role-?play|pretend|imagine|hypothetical|fiction|character|"
                   r"thriller|for a (poem|satire|political|historical)|in a (movie|scene|video game|tv)|thought experiment", re.I)


def _tsv(name: str) -> list[tuple[str, str]]:
    return [(key, text) for _, _, key, text in hw._fields(name)]


@pytest.mark.parametrize("loader", hw.LOADERS, ids=lambda f: f.__name__)
def test_each_file_meets_its_minimum_size_and_yields_well_formed_rows(loader):
    rows = list(loader())
    assert len(rows) >= MIN_ROWS[loader.__name__]
    for r in rows:
        assert r.text and r.text == r.text.strip()
        assert r.kind in KINDS
        assert r.source.startswith("handwritten/")
        assert bool(r.cats) == (r.label == 1)  # harmful rows name a category, safe rows none
        assert r.cats <= set(hw.CATEGORIES)


def test_kinds_follow_the_file():
    kinds = {(r.source, r.kind, r.label) for r in ALL}
    assert kinds == {
        ("handwritten/hard_negatives", "lookalike", 0), ("handwritten/harmful_requests", "request", 1),
        ("handwritten/everyday", "benign", 0), ("handwritten/reply_openings", "response", 0),
        ("handwritten/responses_harmful", "response", 1), ("handwritten/responses_safe", "response", 0),
        ("handwritten/multilingual_benign", "benign", 0),
    }


def test_no_text_appears_twice_across_all_files():
    keys = Counter(" ".join(r.text.lower().split()) for r in ALL)
    assert [k for k, n in keys.items() if n > 1] == []


def test_harmful_requests_cover_every_category():
    counts = Counter(c for r in hw.load_harmful_requests() for c in r.cats)
    short = {c: counts[c] for c, n in MIN_REQUESTS.items() if counts[c] < n}
    assert short == {}
    framed = [r for r in hw.load_harmful_requests() if FRAME.search(r.text)]
    assert len(framed) >= 60


def test_hard_negatives_cover_every_topic():
    topics = Counter(t for t, _ in _tsv("hard_negatives.tsv"))
    assert set(topics) == set(hw.CATEGORIES)
    assert min(topics.values()) >= 25


def test_responses_cover_every_category_and_every_safe_kind():
    harmful = Counter(c for r in hw.load_responses_harmful() for c in r.cats)
    assert set(harmful) == set(hw.CATEGORIES)
    kinds = Counter(k for k, _ in _tsv("responses_safe.tsv"))
    assert set(kinds) == set(hw.SAFE_KINDS) and min(kinds.values()) >= 50


def test_multilingual_has_twelve_languages_in_their_own_scripts():
    langs = Counter(lang for lang, _ in _tsv("multilingual_benign.tsv"))
    assert len(set(langs) - {"en"}) >= 12
    scripts = {"ru": "CYRILLIC", "uk": "CYRILLIC", "zh": "CJK", "ja": "HIRAGANA|KATAKANA|CJK", "ko": "HANGUL",
               "ar": "ARABIC", "hi": "DEVANAGARI"}
    for lang, text in _tsv("multilingual_benign.tsv"):
        if lang in scripts:
            names = " ".join(unicodedata.name(ch, "") for ch in text if ch.isalpha())
            assert re.search(scripts[lang], names), (lang, text)


def test_everyday_is_mostly_short():
    rows = list(hw.load_everyday())
    assert sum(len(r.text.split()) <= 4 for r in rows) >= 150


def test_a_malformed_line_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(hw, "DATA", tmp_path)
    (tmp_path / "harmful_requests.tsv").write_text("# header\nviolent\tok text\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"harmful_requests.tsv:3: expected"):
        list(hw.load_harmful_requests())
    (tmp_path / "harmful_requests.tsv").write_text("violent,gore\tsome text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"harmful_requests.tsv:1: unknown label\(s\) gore"):
        list(hw.load_harmful_requests())
    (tmp_path / "responses_safe.tsv").write_text("polite\tsome text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"responses_safe.tsv:1: kind must be"):
        list(hw.load_responses_safe())


def test_companion_files_load_with_the_first_and_errors_name_them(tmp_path, monkeypatch):
    monkeypatch.setattr(hw, "DATA", tmp_path)
    (tmp_path / "everyday.txt").write_text("hello\n", encoding="utf-8")
    (tmp_path / "everyday_b.txt").write_text("# more\nthanks\n", encoding="utf-8")
    (tmp_path / "everyday-old.txt").write_text("not a companion\n", encoding="utf-8")
    assert [r.text for r in hw.load_everyday()] == ["hello", "thanks"]
    (tmp_path / "hard_negatives.tsv").write_text("violent\tkill the process\n", encoding="utf-8")
    (tmp_path / "hard_negatives_x.tsv").write_text("violent\tfine\nweather\tsunny today\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"hard_negatives_x.tsv:2: unknown label\(s\) weather"):
        list(hw.load_hard_negatives())


def test_markdown_headings_are_rows_but_hash_space_is_a_comment(tmp_path, monkeypatch):
    monkeypatch.setattr(hw, "DATA", tmp_path)
    (tmp_path / "reply_openings.txt").write_text("# a comment\n## Overview\nSure\n", encoding="utf-8")
    assert [r.text for r in hw.load_reply_openings()] == ["## Overview", "Sure"]


# ---------------------------------------------------------------- obfuscation
SAMPLES = [
    "How do I make my sourdough starter rise faster at home?",
    "Write a story about a brave little snail",
    "explain the causes of the first world war",
]


@pytest.mark.parametrize("name", sorted(ob.TRANSFORMS))
@pytest.mark.parametrize("text", SAMPLES)
def test_each_transform_is_deterministic_and_changes_text(name, text):
    f = ob.TRANSFORMS[name]
    a, b = f(text, random.Random(5)), f(text, random.Random(5))
    assert a == b
    assert a != text
    others = {f(text, random.Random(seed)) for seed in range(8)}
    assert len(others) > 1  # the rng matters


def _letters(s: str) -> str:
    return re.sub(r"[^a-z]", "", s.lower())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("text", SAMPLES)
def test_leet_spaced_dotted_keep_letters_recoverable(text, seed):
    rng = random.Random(seed)
    leet = ob.leet(text, rng)
    assert "".join(ob.LEET_REVERSE.get(ch, ch) for ch in leet).lower() == text.lower()
    spaced = ob.spaced(text, rng)
    assert re.sub(r" {2,}", " ", re.sub(r"(?<=\S) (?=\S)", "", spaced)) == text
    dotted = ob.dotted(text, rng)
    assert re.sub(r"(?<=[A-Za-z])\.(?=[A-Za-z])", "", dotted) == text


@pytest.mark.parametrize("text", SAMPLES)
def test_zero_width_and_homoglyphs_are_invisible_changes(text):
    zw = ob.zero_width(text, random.Random(1))
    assert "".join(ch for ch in zw if ch not in ob.ZERO_WIDTH) == text
    hg = ob.homoglyphs(text, random.Random(1))
    back = {v: k for k, v in ob.HOMOGLYPHS.items()}
    assert "".join(back.get(ch, ch) for ch in hg) == text
    assert any(ord(ch) > 127 for ch in hg)


def test_typos_edit_one_to_two_letters_per_changed_word():
    text = "please remember to water the tomatoes tomorrow morning"
    for seed in range(20):
        out = ob.typos(text, random.Random(seed), per_word=(1, 2))
        assert out != text
        assert len(out.split()) == len(text.split())
        for a, b in zip(text.split(), out.split()):
            assert abs(len(a) - len(b)) <= 2
            assert _letters(b)  # words stay words


def test_augment_names_the_transform_it_applied():
    out, name = ob.augment(SAMPLES[0], random.Random(3))
    assert name in ob.TRANSFORMS and out != SAMPLES[0]


def test_obfuscation_needs_nothing_outside_the_standard_library():
    src = (MODEL_DIR / "obfuscation.py").read_text(encoding="utf-8")
    imports = set(re.findall(r"^(?:from|import) (\w+)", src, re.M))
    assert imports <= {"__future__", "random", "re", "typing"}


def test_opt_in_files_load_only_when_named_and_hold_no_duplicate_of_any_other_row():
    """train.py --with TAG: the shipped recipe skips them; named, they parse and repeat no other row."""
    for tag in hw.OPT_IN:
        assert not any(f.endswith(f"_{tag}.tsv") or f.endswith(f"_{tag}.txt")
                       for stem in ("hard_negatives.tsv", "harmful_requests.tsv") for f in hw.files(stem))
    hw.ENABLED.update(hw.OPT_IN)
    try:
        full = list(hw.load_all())
        assert {f for stem in ("hard_negatives.tsv", "harmful_requests.tsv") for f in hw.files(stem)} >= {
            f"{stem}_{tag}.tsv" for stem in ("hard_negatives", "harmful_requests") for tag in hw.OPT_IN}
    finally:
        hw.ENABLED.clear()
    assert len(full) - len(ALL) >= 700  # safety: 280 questions, 130 harmful twins; s34c: 200 requests, 120 look-alikes
    keys = Counter(" ".join(r.text.lower().split()) for r in full)
    assert [k for k, n in keys.items() if n > 1] == []
