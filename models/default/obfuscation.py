"""Obfuscations for augmenting training rows, the same ones people use to slip past a moderator:
leetspeak, s p a c e d and d.o.t.t.e.d letters, typos, look-alike letters, zero-width characters.

Why: a model trained only on clean text reads 'h0w d0 1 m4k3' as noise. The trainer applies these
to a fraction of harmful AND benign rows, so obfuscation itself never becomes a signal of harm.
Every function takes a `random.Random` and is deterministic for a given seed; each one changes any
text that has something it can act on (a leetable letter, a word of 2+ letters, ...). Pure Python, no third-party imports.
"""

from __future__ import annotations

import random
import re
from typing import Callable

# One-to-one on letters (several symbols may stand for one letter, never one symbol for two),
# so leet text stays recoverable with LEET_REVERSE.
LEET = {"a": "4@", "e": "3", "i": "1!", "o": "0", "s": "5$", "t": "7", "b": "8", "g": "9"}
LEET_REVERSE = {sym: letter for letter, syms in LEET.items() for sym in syms}

# Latin letter -> visually identical Cyrillic or Greek letter.
HOMOGLYPHS = {
    "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і", "j": "ј", "s": "ѕ",
    "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р", "T": "Т",
    "X": "Х", "Y": "Υ", "N": "Ν", "Z": "Ζ", "I": "І",
}
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")

# Neighbouring keys on a QWERTY keyboard, for substitution typos.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    ch: "".join(r[j] for j in (i - 1, i + 1) if 0 <= j < len(r)) for r in _ROWS for i, ch in enumerate(r)
}
_WORD = re.compile(r"[A-Za-z]{2,}")


def _pick(n: int, rng: random.Random, p: float) -> list[int]:
    """Indices 0..n-1 chosen with probability p each, never empty when n > 0."""
    chosen = [i for i in range(n) if rng.random() < p]
    return chosen or ([rng.randrange(n)] if n else [])


def leet(text: str, rng: random.Random, p: float = 0.7) -> str:
    """Swap letters for digits/symbols ('hack' -> 'h4ck'). Undo with LEET_REVERSE."""
    spots = [i for i, ch in enumerate(text) if ch.lower() in LEET]
    out = list(text)
    for i in _pick(len(spots), rng, p):
        out[spots[i]] = rng.choice(LEET[text[spots[i]].lower()])
    return "".join(out)


def spaced(text: str, rng: random.Random, p: float = 0.8) -> str:
    """Put a space between the letters of words ('b o m b'); words are then two spaces apart, so
    removing single spaces between characters and collapsing the rest recovers the text."""
    words = text.split()
    spots = [i for i, w in enumerate(words) if len(w) > 1]
    if not spots:
        return text
    out = list(words)
    for i in _pick(len(spots), rng, p):
        out[spots[i]] = " ".join(words[spots[i]])
    return "  ".join(out)


def dotted(text: str, rng: random.Random, p: float = 0.8, sep: str = ".") -> str:
    """Put a dot between the letters of words ('b.o.m.b'); removing dots between letters recovers them."""
    spans = [m.span() for m in _WORD.finditer(text)]
    if not spans:
        return text
    out, last = [], 0
    chosen = set(_pick(len(spans), rng, p))
    for k, (a, b) in enumerate(spans):
        out.append(text[last:a])
        out.append(sep.join(text[a:b]) if k in chosen else text[a:b])
        last = b
    out.append(text[last:])
    return "".join(out)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    op = rng.choice(("swap", "drop", "double", "near"))
    if op == "swap" and len(word) > 2:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "drop" and len(word) > 3:
        return word[:i] + word[i + 1:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    near = _NEIGHBOURS.get(word[i].lower())
    return word[:i] + (rng.choice(near) if near else word[i] + word[i]) + word[i + 1:]


def typos(text: str, rng: random.Random, per_word: tuple[int, int] = (1, 2), p: float = 0.6) -> str:
    """Typo-ridden text: chosen words of 3+ letters get per_word[0]..per_word[1] random edits
    (adjacent swap, dropped letter, doubled letter, neighbouring key)."""
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{3,}", text)]
    if not spans:
        return text
    out, last = [], 0
    chosen = set(_pick(len(spans), rng, p))
    for k, (a, b) in enumerate(spans):
        word = text[a:b]
        if k in chosen:
            for _ in range(rng.randint(*per_word)):
                word = _typo(word, rng)
            if word == text[a:b]:  # a swap of two equal letters: fall back to a doubled letter
                word = word + word[-1]
        out += [text[last:a], word]
        last = b
    out.append(text[last:])
    return "".join(out)


def homoglyphs(text: str, rng: random.Random, p: float = 0.5) -> str:
    """Swap Latin letters for look-alike Cyrillic/Greek ones ('раypal' with a Cyrillic р and а)."""
    spots = [i for i, ch in enumerate(text) if ch in HOMOGLYPHS]
    out = list(text)
    for i in _pick(len(spots), rng, p):
        out[spots[i]] = HOMOGLYPHS[text[spots[i]]]
    return "".join(out)


def zero_width(text: str, rng: random.Random, p: float = 0.3) -> str:
    """Insert invisible zero-width characters between characters; removing them recovers the text."""
    if len(text) < 2:
        return text
    out = [text[0]]
    gaps = set(_pick(len(text) - 1, rng, p))
    for k, ch in enumerate(text[1:]):
        if k in gaps:
            out.append(rng.choice(ZERO_WIDTH))
        out.append(ch)
    return "".join(out)


TRANSFORMS: dict[str, Callable[[str, random.Random], str]] = {
    "leet": leet, "spaced": spaced, "dotted": dotted, "typos": typos, "homoglyphs": homoglyphs,
    "zero_width": zero_width,
}


def augment(text: str, rng: random.Random) -> tuple[str, str]:
    """One randomly chosen obfuscation of text, and its name."""
    name = rng.choice(sorted(TRANSFORMS))
    return TRANSFORMS[name](text, rng), name
