"""Cheap input normalization shared by every moderator: the forms of a text worth scoring.

Obfuscation moves a harmful request out of what a model learned to read while keeping it
readable to people (and to the wrapped LLM). `variants(text)` undoes the common tricks
and returns the texts the gate scores, original first; the gate keeps the highest score
per category, so a variant can only add flags, never remove one.

  normalized  NFKC (full-width, math-alphanumeric, circled and ligature letters to plain);
              zero-width, bidi-control and other invisible characters dropped (Unicode
              "tag" letters, which can hide ASCII, turned back into it); stacked combining
              marks on Latin letters dropped; confusable Cyrillic/Greek/small-capital
              letters folded to Latin (only inside words that mix scripts, or in a text
              that is mostly Latin: genuine Russian or Greek is left alone); leetspeak
              undone in words that mix letters with digits or symbols (h0w t0 m4k3 4 b0mb);
              letter spacing joined (s p a c e d, d.o.t.t.e.d, d-a-s-h).
  decoded     base64, hex (plain, \\x.., 0x.., separated) and %XX spans that decode to
              mostly printable text, replaced in place (twice, for nested encodings).
  rot13       segments whose rot13 has more common English words than they do.
  respelled   the normalized text with misspelt words repaired (hwo do i mkae a bmob), when at
              least a third of its words needed it (spelling.py).

Cost: pure Python, linear in the text (every regex is free of look-aheads that could make it
quadratic on hostile input). An ASCII text skips the Unicode passes. Measured beside a model
check by bench/bench_normalize.py: ~10-70 us for a short prompt, ~0.5 ms for 4,000 characters,
under 1% of one check by the bundled classifier; a variant that differs from the original costs
one more model input.
Bounds: at most MAX_VARIANTS texts, each at most EXPANSION x the input (+64 chars), at most
MAX_SPANS decoded spans, so a huge or hostile text cannot blow up.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

from prism_cli.spelling import respell

MAX_VARIANTS = 5
EXPANSION = 4
MAX_SPANS = 16
MIN_ENCODED = 16
"""Shortest base64 / hex run considered (shorter runs are ordinary words and numbers)."""

# ---------------------------------------------------------------- invisible characters

_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0]
    + list(range(0x200B, 0x2010))  # zero-width space/non-joiner/joiner, LRM, RLM
    + list(range(0x202A, 0x202F))  # bidi embeddings and overrides
    + list(range(0x2060, 0x2070))  # word joiner, invisible operators, bidi isolates
    + list(range(0xFE00, 0xFE10))  # variation selectors
    + list(range(0xE0000, 0xE0020)) + list(range(0xE007F, 0xE0080)) + list(range(0xE0100, 0xE01F0)),
    None,
)
_INVISIBLE.update({0xE0000 + c: chr(c) for c in range(0x20, 0x7F)})  # tag letters spell hidden ASCII
_INVISIBLE_RX = re.compile("[" + "".join(re.escape(chr(c)) for c in (0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4,
                                                                      0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0))
                           + "\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\U000e0000-\U000e01ef]")
_ZALGO_RX = re.compile(r"(?<=[A-Za-z])[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")

# ---------------------------------------------------------------- confusable letters

_PAIRS = (
    # Cyrillic
    "аaвBеeоoрpсcуyхxіiјjѕsһhԁdԛqԝwӏlкkмmтtнhпnьbгrѵvүyӀI"
    "АAВBЕEКKМMНHОOРPСCТTХXУYІIЈJЅSԀDԚQԜWҮY"
    # Greek
    "αaβbγyεeιiκkνvοoρpτtυuχxωwηnμuϲcϳj"
    "ΑAΒBΕEΖZΗHΙIΚKΜMΝNΟOΡPΤTΥYΧXϹC"
    # small capitals and other Latin look-alikes
    "ᴀaʙbᴄcᴅdᴇeꜰfɢgʜhɪiᴊjᴋkʟlᴍmɴnᴏoᴘpǫqʀrꜱsᴛtᴜuᴠvᴡwʏyᴢzıiȷjɑaɡgօoսuᏞLᎪAᏴBᏟCᎬEᎻHᏦKᎷMᏢPᏚSᎢTᏔW"
)
_FOLD: dict[int, str] = {ord(_PAIRS[i]): _PAIRS[i + 1] for i in range(0, len(_PAIRS), 2)}
_SYMBOL_LETTERS = {b + i: chr(65 + i) for b in (0x1F130, 0x1F150, 0x1F170, 0x1F1E6) for i in range(26)}
"""Squared, negative circled/squared and regional-indicator letters: symbols, not any script's letters."""
_SYMBOL_RX = re.compile("[\U0001f130-\U0001f149\U0001f150-\U0001f169\U0001f170-\U0001f189\U0001f1e6-\U0001f1ff]")
_FOLD_RX = re.compile("[" + "".join(re.escape(chr(c)) for c in _FOLD) + "]")
_WORD_RX = re.compile(r"[^\W_]+")


def _is_latin(c: str) -> bool:
    return c.isascii() or ("\u00c0" <= c <= "\u024f")


def _fold_confusables(text: str) -> str:
    """Look-alike letters to Latin where they disguise Latin text, never in genuine foreign text.

    A word is folded when it mixes Latin letters with look-alikes ("Ноw"), or when every
    letter of it has a Latin look-alike and the text holds fewer genuinely foreign letters
    (ones without a Latin twin, like и, я, λ, π) than Latin ones.
    """
    if not _FOLD_RX.search(text):
        return text
    words = _WORD_RX.findall(text)
    latin = genuine = 0
    for w in words:
        for c in w:
            if c.isalpha():
                if ord(c) in _FOLD:
                    continue
                if _is_latin(c):
                    latin += 1
                else:
                    genuine += 1
    mostly_latin = genuine < max(latin, 1)

    def fold(m: re.Match[str]) -> str:
        w = m.group(0)
        if not _FOLD_RX.search(w):
            return w
        letters = [c for c in w if c.isalpha()]
        has_latin = any(_is_latin(c) for c in letters if ord(c) not in _FOLD)
        all_lookalike = all(ord(c) in _FOLD for c in letters)
        if has_latin or (all_lookalike and mostly_latin):
            return w.translate(_FOLD)
        return w

    return _WORD_RX.sub(fold, text)


def clean(text: str) -> str:
    """NFKC, invisible characters out, combining-mark stacks off Latin letters, look-alikes folded."""
    if text.isascii():
        return text
    out = unicodedata.normalize("NFKC", text)
    if _INVISIBLE_RX.search(out):
        out = out.translate(_INVISIBLE)
    out = _ZALGO_RX.sub("", out)
    if _SYMBOL_RX.search(out):
        out = out.translate(_SYMBOL_LETTERS)
    return _fold_confusables(out)


# ---------------------------------------------------------------- leetspeak and spacing

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e"})
_LEET_CHARS = "01345789@$!|+€"
_LEET_SET = frozenset(_LEET_CHARS) - {"!"}
_BANG_RX = re.compile(r"![A-Za-z]")
_TOKEN_RX = re.compile(r"(?<!\S)([\"'(\[]{0,4})([A-Za-z0-9@$!|+€']{1,24}?)([\"').,;:?!\]]{0,6})(?!\S)")
_LEET_NEAR_RX = re.compile(r"[A-Za-z][01345789@$|+€]|[01345789@$!|+€][A-Za-z]")
"""A leet character touching a letter (a trailing "!" does not count): the cheap test first."""
_LONE_RX = re.compile(r"(?<!\S)[01345789]{1,3}(?=[\s.,;:?!]|$)")
"""In a leet text, short all-digit words are words too: 4 -> a, 70 -> to, 17 -> it."""
_NOT_LEET_RX = re.compile(
    r"[26]|^\d*(?:1st|2nd|3rd|[04-9]th|1[123]th)$|^\d+(?:am|pm|s|[kmgt]b|k?[gm]|km|mm|cm|ms|hz|px|[dhkmx])$",
    re.IGNORECASE,
)
"""Not leet: words with digits leet never uses (h2o, mp4), ordinals (21st), numbers with a unit (10km, 5pm)."""
_SPACED_RX = re.compile(r"(?<!\S)[^\W_](?:([ .\-_*·•|~/+])(?:[^\W_]|'))(?:\1(?:[^\W_]|'))+")
_SPACES_RX = re.compile(r"(?<=\S)  +(?=\S)")
_PAIR_RX = re.compile(r"(?<!\S)[^\W_]([ .\-_*·•|~/+])[^\W_](?![^\W_])")
"""Spaced runs start at a word boundary (after whitespace): "d.o I h.u.r.t" is three words."""


def _leet_word(core: str) -> bool:
    """A word that mixes ASCII letters with leet digits or symbols: b0mb, m4k3, $ex, k!ll."""
    return (
        len(core) <= 24
        and any(c.isalpha() for c in core)
        and any(c in _LEET_CHARS for c in core)
        and not _NOT_LEET_RX.search(core)
    )


def _undo_leet(text: str) -> str:
    """Only the whitespace-delimited words around a leet character touching a letter are looked at."""
    if _LEET_SET.isdisjoint(text) and not ("!" in text and _BANG_RX.search(text)):
        return text
    words: dict[tuple[int, int], str] = {}
    seen = -1
    for m in _LEET_NEAR_RX.finditer(text):
        h = m.start()
        if h < seen:
            continue
        floor, ceil = max(0, h - 40), min(len(text), h + 40)
        left = max(text.rfind(" ", floor, h), text.rfind("\n", floor, h), text.rfind("\t", floor, h))
        ends = [e for e in (text.find(" ", h, ceil), text.find("\n", h, ceil), text.find("\t", h, ceil)) if e >= 0]
        lo = left + 1 if left >= 0 else floor
        hi = min(ends) if ends else ceil
        seen = hi
        if (left < 0 and floor > 0) or (not ends and ceil < len(text)):
            continue  # a run of 40+ characters without a space: not a word
        t = _TOKEN_RX.fullmatch(text, lo, hi)
        if t is not None and _leet_word(t.group(2)):
            words[(lo, hi)] = t.group(1) + t.group(2).translate(_LEET) + t.group(3)
    if not words:
        return text
    out, pos = [], 0
    for (lo, hi), word in words.items():
        out += [text[pos:lo], word]
        pos = hi
    out.append(text[pos:])
    text = "".join(out)
    if len(words) >= 2:  # a leet text: a lone "4" or "1" between leet words is a letter too
        text = _LONE_RX.sub(lambda m: m.group(0).translate(_LEET), text)
    return text


def _join_spacing(text: str) -> str:
    """Runs of single letters with one separator ("s p a c e d", "d.o.t") become words; once one
    did, two-letter runs ("t o") are joined too. Runs without a letter (1.2.3) stay."""
    if not _SPACED_RX.search(text):
        return text

    def join(m: re.Match[str]) -> str:
        run, sep = m.group(0), m.group(1)
        end = m.end()
        if end < len(m.string) and (m.string[end].isalnum() or m.string[end] == "_"):
            run = run[:-2]  # its last letter begins a longer word ("и я люблю"): not part of the run
        if len(run) < 5 or not any(c.isalpha() for c in run):
            return m.group(0)
        head, a = "", m.start()
        if run[0] in "aAI" and len(run) >= 7 and a >= 2 and m.string[a - 1] == sep and m.string[a - 2].isalnum():
            head, run = run[:2], run[2:]  # "make a b o m b": the article stays a word
        return head + run.replace(sep, "") + m.group(0)[len(head) + len(run) :]

    def pair(m: re.Match[str]) -> str:
        return m.group(0).replace(m.group(1), "") if m.group(0).replace(m.group(1), "").isalpha() else m.group(0)

    out = _SPACED_RX.sub(join, text)
    if out == text:
        return out
    return _SPACES_RX.sub(" ", _PAIR_RX.sub(pair, out))  # "h o w  t o" used two spaces between words


def deobfuscate(text: str) -> str:
    """Leetspeak and letter spacing undone (on an already cleaned text)."""
    return _join_spacing(_undo_leet(text))


def normalize(text: str) -> str:
    """The normalized form of a text (the first variant after the original)."""
    return deobfuscate(clean(text))


# ---------------------------------------------------------------- encodings

_RUN_RX = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{%d,}={0,2}" % MIN_ENCODED)
"""Candidate base64 / plain hex runs. No look-ahead: every scan stays linear on hostile input."""
_SEP_HEX_RX = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[ :,]?){%d,}|(?:\\x[0-9A-Fa-f]{2}){%d,}" % (MIN_ENCODED // 2, 4)
)
_PCT_RX = re.compile(r"(?:%[0-9A-Fa-f]{2}){4,}")
_MAYBE_ENCODED_RX = re.compile(r"%[0-9A-Fa-f]{2}|\\x[0-9A-Fa-f]{2}|[0-9A-Fa-f]{2}[ :,][0-9A-Fa-f]{2}[ :,][0-9A-Fa-f]{2}")
"""Cheap test for separated hex, \\x and %XX escapes; long runs are found with str.split."""
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def _readable(raw: bytes) -> str | None:
    """The bytes as text when they are mostly printable UTF-8 with letters in them, else None."""
    if len(raw) < 4:
        return None
    text = raw.decode("utf-8", "replace")
    good = sum(1 for c in text if (c.isprintable() or c in "\n\t\r") and c != "\ufffd")
    letters = sum(1 for c in text if c.isalpha())
    if good < 0.9 * len(text) or letters < 0.4 * len(text):
        return None
    return text


def _b64(span: str) -> str | None:
    """Decode a base64 (or url-safe) run, trying the 4 alignments a cut-off run can have."""
    import base64  # only when a text holds a candidate run: keeps `prism check` start-up lean
    import binascii

    body = span.rstrip("=")
    alt = b"-_" if ("-" in body or "_" in body) else None
    best: str | None = None
    for k in range(4):
        part = body[k:]
        part = part[: len(part) - len(part) % 4] if k or len(part) % 4 == 1 else part
        if len(part) < MIN_ENCODED - 4:
            break
        try:
            raw = base64.b64decode(part + "=" * (-len(part) % 4), altchars=alt, validate=alt is None)
        except (binascii.Error, ValueError):
            continue
        text = _readable(raw)
        if text is not None and (best is None or len(text) > len(best)):
            best = text
        if best is not None and k == 0:
            break
    return best


def _hex(span: str) -> str | None:
    digits = re.sub(r"0x|\\x|[ :,]", "", span)
    for k in (0, 1):
        part = digits[k:]
        part = part[: len(part) - len(part) % 2]
        try:
            text = _readable(bytes.fromhex(part))
        except ValueError:
            continue
        if text is not None:
            return text
    return None


def _run(span: str) -> str | None:
    """A run of base64 alphabet: plain hex when it is all hex digits, else base64."""
    if len(span) % 2 == 0 and all(c in _HEXDIGITS for c in span):
        found = _hex(span)
        if found is not None:
            return found
    return _b64(span)


def _pct(span: str) -> str | None:
    from urllib.parse import unquote_to_bytes

    return _readable(unquote_to_bytes(span))


def _replace_spans(text: str, rx: re.Pattern[str], dec: Callable[[str], str | None], budget: list[int]) -> str:
    def sub(m: re.Match[str]) -> str:
        if budget[0] <= 0:
            return m.group(0)
        out = dec(m.group(0))
        if out is None:
            return m.group(0)
        budget[0] -= 1
        return " " + out + " "

    return rx.sub(sub, text)


def decode_spans(text: str) -> str:
    """The text with every encoded span that decodes to readable text replaced by its decoding."""
    if not _MAYBE_ENCODED_RX.search(text) and max(map(len, text.split()), default=0) < MIN_ENCODED:
        return text
    budget = [MAX_SPANS]
    out = text
    for _ in range(2):  # base64 of hex, base64 of base64
        before = out
        if "%" in out:
            out = _replace_spans(out, _PCT_RX, _pct, budget)
        out = _replace_spans(out, _SEP_HEX_RX, _hex, budget)
        out = _replace_spans(out, _RUN_RX, _run, budget)
        if out == before:
            break
    return out


# ---------------------------------------------------------------- rot13

_COMMON = frozenset(
    """the to of and a in that have i it for not on with he as you do at this but his by from they we say her she an
    will my one all would there their what so up out if about who get which go me when make can like time no just him
    know take people into year your good some could them see other than then now look only come its over think also
    back after use two how our work first well way even new want because any these give day most us is are was were
    has had did why where please tell explain write need help step steps kill build find ways best person someone""".split()
)
"""Common English words, none of whose rot13 is one too ("be" and "or" swap, so they are left out)."""
_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm"
)
_ROT13_COMMON = frozenset(w.translate(_ROT13) for w in _COMMON)
_ROT13_COMMON |= {w + p for w in _ROT13_COMMON for p in ".,?!:;"}
_PUNCT = ".,;:!?\"'()[]"
_SEGMENT_RX = re.compile(r"[^.!?:;\n]+[.!?:;\n]*")


def _common_words(text: str) -> int:
    return sum(1 for w in text.lower().split() if w.strip(_PUNCT) in _COMMON)


def rot13_segments(text: str) -> str:
    """Segments (sentences, lines) whose rot13 reads as English more than they do, rot13-decoded."""
    if sum(map(_ROT13_COMMON.__contains__, text.lower().split())) < 2:  # decides for almost every text
        return text

    def sub(m: re.Match[str]) -> str:
        seg = m.group(0)
        rot = seg.translate(_ROT13)
        mine, theirs = _common_words(seg), _common_words(rot)
        return rot if theirs >= 2 and theirs > 2 * mine else seg

    return _SEGMENT_RX.sub(sub, text)


# ---------------------------------------------------------------- variants


def variants(text: str) -> list[str]:
    """The texts to score for `text`: the original first, then its normalized and decoded forms.

    De-duplicated, at most MAX_VARIANTS, each at most EXPANSION x len(text) + 64 characters.
    """
    cap = EXPANSION * len(text) + 64
    cleaned = clean(text)
    plain = deobfuscate(cleaned)
    found = [text, plain, respell(plain)]
    decoded = decode_spans(cleaned)
    if decoded != cleaned:
        found.append(deobfuscate(decoded))
    rot = rot13_segments(cleaned)
    if rot != cleaned:
        found.append(rot)
    out: list[str] = []
    for v in found:
        v = v[:cap]
        if v.strip() and v not in out:
            out.append(v)
        if len(out) == MAX_VARIANTS:
            break
    return out or [text]
