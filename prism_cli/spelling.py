"""Spelling repair before scoring: 'hwo do i mkae a bmob' is read as 'how do i make a bomb'.

Why: misspelling every word is the cheapest obfuscation there is, and a WordPiece model reads
'bmob' as pieces it never learned to fear (the bundled model kept half its recall on such text).
Training on typo'd copies taught the model that misspelling itself is suspicious; repairing the
words first does not, and it helps every moderator.

How: a word of 3+ letters that is not in the lexicon (prism_cli/lexicon.txt, written from the
training data by models/default/recipe_lexicon.py) is replaced by the closest lexicon word:
the fewest edits (a letter dropped, added, changed, or two neighbours swapped; at most one edit
for words of up to 4 letters, two for longer ones), then the most frequent. Capitalised words
after the first (names), words in capitals (acronyms), words with digits and words with letters
outside ASCII (other languages) are left alone; the last still count as words of the text.
`respell(text)` returns the text unchanged unless at least MIN_SHARE of its checked words were
repaired, so a name or the partial last word of a streamed reply does not cost an extra model
call; the gate scores the repaired text beside the original and keeps the higher score.

Cost: nothing for text whose words are all known. The first repair in a process loads the
lexicon and indexes it (~0.1-0.2 s once); a repair is then a few dictionary lookups per word.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

MIN_SHARE = 1 / 3
"""Least share of a text's checked words that must be repaired for the repaired text to be scored."""
MAX_WORD = 20
MAX_REPAIRS = 64
"""Most unknown words looked up per text: the gate calls this per window, and a page of random
letters must not cost more than a model call."""
_WORD_RX = re.compile(r"\w+")


@lru_cache(maxsize=1)
def lexicon() -> dict[str, int]:
    """Word -> rank (0 = most frequent)."""
    text = Path(__file__).with_name("lexicon.txt").read_text(encoding="utf-8")
    words = [w for w in text.split("\n") if w and not w.startswith("#")]
    return {w: i for i, w in enumerate(words)}


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


@lru_cache(maxsize=1)
def _index() -> dict[str, list[str]]:
    """Every lexicon word (3+ letters) and each of its one-letter deletions -> the words it came from."""
    idx: dict[str, list[str]] = {}
    for w in lexicon():
        if len(w) >= 3:
            for key in _deletes(w) | {w}:
                idx.setdefault(key, []).append(w)
    return idx


def distance(a: str, b: str, cap: int = 3) -> int:
    """Edits from a to b (insert, delete, substitute, swap two neighbours), or `cap` if at least cap."""
    if abs(len(a) - len(b)) >= cap:
        return cap
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) >= cap:
            return cap
        prev2, prev = prev, cur
    return min(prev[-1], cap)


@lru_cache(maxsize=4096)
def repair(word: str) -> str | None:
    """The lexicon word closest to a lower-case unknown word, or None when nothing is close enough.
    One edit is looked for first (most typos); two only when none is found, for words of 5+ letters."""
    idx, rank = _index(), lexicon()
    ones = {word} | _deletes(word)
    for most, keys in ((1, ones), (2, {d2 for d in ones for d2 in _deletes(d)} - ones)):
        if most > 1 and len(word) <= 4:
            break
        seen: set[str] = set()
        best: tuple[int, int, str] | None = None
        for key in keys if most == 1 else keys | ones:
            for cand in idx.get(key, ()):
                if cand in seen:
                    continue
                seen.add(cand)
                d = distance(word, cand, most + 1)
                if d <= most and (best is None or (d, rank[cand]) < best[:2]):
                    best = (d, rank[cand], cand)
        if best is not None:
            return best[2]
    return None


def respell(text: str) -> str:
    """The text with its misspelt words repaired, or the text itself (see the module's docstring)."""
    found = list(_WORD_RX.finditer(text))
    if not found:
        return text
    known = None
    checked, unknown, fixes = 0, 0, []
    for n, m in enumerate(found):
        w = m.group(0)
        if len(w) < 3 or not w.isalpha() or (n and w[0].isupper()) or w.isupper():
            continue  # short words, numbers, names, acronyms
        checked += 1
        if not w.isascii() or len(w) > MAX_WORD:
            continue  # a word of another script or language counts, but is not English to repair
        low = w.lower()
        known = known or lexicon()
        if low in known:
            continue
        unknown += 1
        if unknown > MAX_REPAIRS:
            break
        fix = repair(low)
        if fix is not None:
            fixes.append((m.start(), m.end(), fix.capitalize() if w[0].isupper() else fix))
    if not fixes or len(fixes) < MIN_SHARE * checked:
        return text
    out, last = [], 0
    for a, b, fix in fixes:
        out += [text[last:a], fix]
        last = b
    out.append(text[last:])
    return "".join(out)
