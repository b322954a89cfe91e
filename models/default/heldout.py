"""Held-out evaluation sets for the bundled moderator: labeled JSONL files for `prism eval`.

EVALUATION ONLY. These sets measure the default moderator on text it never saw; nothing here
may reach training. So this module has no shared loader with the recipe (recipe_*.py,
train.py): it reads its sources itself, writes only to models/default/work/heldout/
(git-ignored), and refuses to be imported from training code (see _refuse_training_importers;
tests/test_heldout_harness.py also checks that no training file names it).
It reads Eval-only folders of ../shared/data in place, never copying them into the repo.

Every set is a file <name>.jsonl of {"text", "label" (1 unsafe / 0 safe), "category"} plus
manifest.json (role, counts, kind, what it is). kind: "binary" (both labels: precision,
recall, F1, FPR, AP), "recall" (all unsafe) or "fpr" (all safe). Texts are deduplicated
within a set (case- and space-folded); large sets are sampled deterministically (SEED).

Hand-written probes (tests/data/probes/, format in the file header of each; never trained on):
- probe_harmful_vs_lookalikes (prompt): harmful_prompts.tsv (1, category = policy id) vs
  benign_lookalikes.tsv (0, category = the harm topic it imitates), so per-category figures
  pair each harm with its own look-alikes.
- probe_everyday (prompt, fpr): everyday_prompts.txt.
- probe_reply_openings (response, fpr): reply_openings.txt (assistant reply openings).
- probe_responses (response): harmful_responses.tsv (1, category) vs safe_responses.txt (0).
- probe_multilingual (prompt): multilingual_harmful.tsv (1) vs multilingual_benign.tsv (0),
  category = language, so per-category figures are recall and FPR per language.
- probe_long (prompt): long_harmful.tsv (1, category; the harm is anywhere in 80-250 words of
  context) vs long_benign.txt (0: pasted emails, notes, articles, chapters). Written after 2.0.2,
  whose 48-token training crops made 128-token windows of everyday prose look like jailbreaks.
- probe_long_responses (response, fpr): long_safe_responses.txt (long helpful answers and refusals).
- probe_safety (prompt): safety_harmful.tsv (1: poisoning, toxic fumes, self-harm with the same
  knowledge) vs safety_questions.tsv (0: which medicines or chemicals are dangerous together, storage,
  first aid). Written after 2.0.3, which blocked "Which medicines are dangerous to take together?".
- probe_s34 (prompt): s34_harmful.tsv (1: S3/S4 requests whose harm is in intent, access, secrecy,
  incapacitation or cover-up, mostly without sexual words) vs s34_lookalikes.tsv (0: parents, survivors,
  clinicians and investigators asking about the same things). Written after 2.0.3 by a writer who saw
  no training data, when 13 retrains of nearby recipes kept missing two such S3/S4 probes.
- probe_obf_{leet,spaced,dotted,typos} (prompt): probe_harmful_vs_lookalikes with every text
  transformed (same labels and categories), to compare recall with clean recall and to see
  whether obfuscated look-alikes get flagged: leet (a4 e3 i1 o0 s5 t7), spaced (letters
  separated by one space, words by three), dotted (letters separated by dots, words by a
  space), typos (1-2 edits per word of 3+ letters: swap, drop, double or a QWERTY neighbour;
  seeded per text, so a text always gets the same typos).

Eval-only sets of ../shared/data (their own labels):
- baheti_reddit_turns (prompt): ToxiChat (Baheti et al. 2021) dev+test Reddit turns,
  offense_label Offensive = 1, Safe = 0.
- baheti_chatbot_replies (response): the DialoGPT and GPT-3 replies of the same threads,
  Offensive = 1, Safe = 0.
- safety_tuned_llamas (prompt): I-CoNa, I-Controversial, I-MaliciousInstructions (1,
  category = file) vs I-Alpaca (0). Q-Harm is left out: it has no per-row labels.
- safety_tuned_llamas_physical (prompt): I-PhysicalSafetyUnsafe (1) vs I-PhysicalSafetySafe
  (0), the same situations with unsafe vs safe advice.
- bio_overrefusal (prompt, fpr): legitimate biology questions, tiers 1-4 (category = tier);
  tier 5 ("ambiguous", expert disagreement) is left out as the dataset card says.
- sorry_bench_prompts (prompt, recall): the 450 SORRY-Bench prompts, category = its four
  groups by category id (1-5 hate speech, 6-25 crimes/torts, 26-40 inappropriate topics,
  41-45 unqualified advice). Groups 3-4 hold many requests a moderator may fairly allow.
- sorry_bench_responses (response): LLM-judged model answers, "Harmful & Relevant Answer" = 1,
  "Harmless Answer" = 0 (sampled to SORRY_SAFE); "Harmful but Irrelevant" and unjudged left out.
- xsafety (prompt, recall): XSafety prompts in 10 languages (bn read from .xlsx), 13 risk
  types (the commonsense quiz left out), XSAFETY_PER_TYPE rows per type and language at the
  same line numbers in every language; category = language. Many XSafety prompts are not
  harmful on their face (e.g. Physical_Harm: "I stayed up late chatting..."): the set says
  how recall differs between languages, not how high it can be.
- ethos (prompt): ETHOS binary, isHate >= 0.5 = 1 (the dataset's own cut), else 0.
- malicious_instruct (prompt, recall): 100 malicious questions.
- tensor_trust_attacks (prompt, recall): hijacking and extraction attack texts (category
  hijacking / extraction), TENSOR_TRUST_PER_FILE each.
- alpaca (prompt, fpr): ALPACA_N Alpaca instructions.
- refusal_direction_harmless (prompt, fpr): REFUSAL_HARMLESS_N of the harmless test split
  (Alpaca instructions, Eval-only), none also in the alpaca sample.

Run: python models/default/heldout.py [--probes DIR] [--data DIR] [--out DIR] [--no-probes]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from heldout_public import (  # noqa: F401  (re-exported: measure.py and the tests use them from here)
    HERE, REPO, SEED, HeldoutError, HeldoutSet, _refuse_training_importers, data_dir, dedupe, eval_sets, need, row, sample,
)

_refuse_training_importers()  # also when heldout_public was already imported by an evaluation

OUT = HERE / "work" / "heldout"
PROBES = REPO / "tests" / "data" / "probes"

CATEGORY_IDS = frozenset({f"S{i}" for i in range(1, 15)} | {"jailbreak", "harassment"})
# file -> (fields, label); "category" is checked against CATEGORY_IDS, "lang" against ISO 639-1 shape.
PROBE_FILES = {
    "harmful_prompts.tsv": (("category", "text"), 1),
    "benign_lookalikes.tsv": (("category", "text"), 0),
    "everyday_prompts.txt": (("text",), 0),
    "reply_openings.txt": (("text",), 0),
    "harmful_responses.tsv": (("category", "text"), 1),
    "safe_responses.txt": (("text",), 0),
    "multilingual_benign.tsv": (("lang", "text"), 0),
    "multilingual_harmful.tsv": (("lang", "category", "text"), 1),
    "long_harmful.tsv": (("category", "text"), 1),
    "long_benign.txt": (("text",), 0),
    "long_safe_responses.txt": (("text",), 0),
    "safety_harmful.tsv": (("category", "text"), 1),
    "safety_questions.tsv": (("category", "text"), 0),
    "s34_harmful.tsv": (("category", "text"), 1),
    "s34_lookalikes.tsv": (("category", "text"), 0),
}


# ---------------------------------------------------------------- obfuscations (seeded, deterministic)

_LEET = str.maketrans("aeiostAEIOST", "431057431057")
_QWERTY = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def leet(text: str) -> str:
    return text.translate(_LEET)


def spaced(text: str) -> str:
    return "   ".join(" ".join(w) for w in text.split())


def dotted(text: str) -> str:
    return " ".join(".".join(w) for w in text.split())


def _neighbour(ch: str, rng: random.Random) -> str:
    low = ch.lower()
    for r, line in enumerate(_QWERTY):
        c = line.find(low)
        if c >= 0:
            near = [line[c - 1] if c > 0 else "", line[c + 1] if c + 1 < len(line) else ""]
            near += [_QWERTY[rr][c] for rr in (r - 1, r + 1) if 0 <= rr < 3 and c < len(_QWERTY[rr])]
            pick = rng.choice([n for n in near if n])
            return pick.upper() if ch.isupper() else pick
    return rng.choice("etaoinshr")


def _typo(word: str, rng: random.Random) -> str:
    for _ in range(8):  # an edit can leave the word as it was (swapping "ll"); try another
        i = rng.randrange(len(word))
        op = rng.choice(("swap", "drop", "double", "neighbour"))
        if op == "swap" and i + 1 < len(word):
            new = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif op == "drop" and len(word) > 2:
            new = word[:i] + word[i + 1:]
        elif op == "double":
            new = word[:i] + word[i] + word[i:]
        else:
            new = word[:i] + _neighbour(word[i], rng) + word[i + 1:]
        if new != word:
            return new
    return word


def typos(text: str, seed: int = SEED) -> str:
    """1-2 typos in every word of 3+ letters; the same text always gets the same typos."""
    rng = random.Random(f"{seed}:{text}")
    parts = re.split(r"(\W+)", text)
    for k, w in enumerate(parts):
        if len(w) >= 3 and w.isalpha():
            for _ in range(rng.choice((1, 2))):
                w = _typo(w, rng)
            parts[k] = w
    return "".join(parts)


OBFUSCATIONS = {"leet": leet, "spaced": spaced, "dotted": dotted, "typos": typos}


# ---------------------------------------------------------------- hand-written probes


def read_probe_file(path: Path) -> list[dict]:
    """Records of one probe file (fields as PROBE_FILES says); the first bad line stops with file:line."""
    fields, _ = PROBE_FILES[path.name]
    try:
        lines = need(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise HeldoutError(f"{path}: invalid UTF-8 at byte {e.start}") from None
    out = []
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        where = f"{path}:{no}"
        if len(cells) != len(fields):
            raise HeldoutError(f"{where}: expected {len(fields)} TAB-separated field(s) ({', '.join(fields)}), got {len(cells)}")
        rec = {f: c.strip() for f, c in zip(fields, cells)}
        if not rec["text"]:
            raise HeldoutError(f"{where}: empty text")
        if "category" in rec and rec["category"] not in CATEGORY_IDS:
            raise HeldoutError(f"{where}: category {rec['category']!r} is not a policy category id ({', '.join(sorted(CATEGORY_IDS))})")
        if "lang" in rec and not re.fullmatch(r"[a-z]{2}", rec["lang"]):
            raise HeldoutError(f"{where}: lang {rec['lang']!r} is not an ISO 639-1 code")
        out.append(rec)
    if not out:
        raise HeldoutError(f"{path}: no probes in the file")
    return out


def probe_sets(folder: Path) -> list[HeldoutSet]:
    recs = {name: read_probe_file(folder / name) for name in PROBE_FILES}

    def rows(name: str, cat: str | None = "category") -> list[dict]:
        label = PROBE_FILES[name][1]
        return [row(r["text"], label, r.get(cat) if cat else None) for r in recs[name]]

    harm_look = rows("harmful_prompts.tsv") + rows("benign_lookalikes.tsv")
    sets = [
        HeldoutSet("probe_harmful_vs_lookalikes", "prompt", "probe", "hand-written harmful requests vs benign look-alikes (category = harm topic)", harm_look),
        HeldoutSet("probe_everyday", "prompt", "probe", "hand-written everyday prompts, all safe", rows("everyday_prompts.txt")),
        HeldoutSet("probe_reply_openings", "response", "probe", "hand-written assistant reply openings, all safe", rows("reply_openings.txt")),
        HeldoutSet("probe_responses", "response", "probe", "hand-written harmful responses vs safe responses",
                   rows("harmful_responses.tsv") + rows("safe_responses.txt")),
        HeldoutSet("probe_multilingual", "prompt", "probe", "hand-written harmful vs benign prompts in other languages (category = language)",
                   rows("multilingual_harmful.tsv", "lang") + rows("multilingual_benign.tsv", "lang")),
        HeldoutSet("probe_long", "prompt", "probe", "hand-written long (80-250 word) harmful requests vs long everyday texts",
                   rows("long_harmful.tsv") + rows("long_benign.txt")),
        HeldoutSet("probe_long_responses", "response", "probe", "hand-written long assistant replies, all safe",
                   rows("long_safe_responses.txt")),
        HeldoutSet("probe_safety", "prompt", "probe",
                   "hand-written requests that turn hazard knowledge on someone vs safety questions about the same hazards",
                   rows("safety_harmful.tsv") + rows("safety_questions.tsv")),
        HeldoutSet("probe_s34", "prompt", "probe",
                   "hand-written S3/S4 requests whose harm is in intent or context, not in sexual words, vs look-alikes",
                   rows("s34_harmful.tsv") + rows("s34_lookalikes.tsv")),
    ]
    for variant, fn in OBFUSCATIONS.items():
        sets.append(HeldoutSet(f"probe_obf_{variant}", "prompt", "obfuscation",
                               f"probe_harmful_vs_lookalikes, every text {variant}",
                               [{**r, "text": fn(r["text"])} for r in harm_look], variant=variant))
    for s in sets:
        s.rows = dedupe(s.rows, s.name, strict=True)
    return sets


# ---------------------------------------------------------------- writing


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_sets(sets: list[HeldoutSet], out: Path) -> dict:
    """Each set as out/<name>.jsonl, then out/manifest.json (written last: its presence means done)."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"seed": SEED, "sets": {}}
    for s in sets:
        if not s.rows:
            raise HeldoutError(f"{s.name}: no rows")
        _write_atomic(out / f"{s.name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in s.rows))
        manifest["sets"][s.name] = {
            "file": f"{s.name}.jsonl", "role": s.role, "group": s.group, "kind": s.kind, "variant": s.variant,
            "n": len(s.rows), "positives": sum(r["label"] for r in s.rows), "note": s.note,
        }
    _write_atomic(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def build(probes: Path | None = PROBES, data: Path | None = None, out: Path = OUT) -> dict:
    """Build every set (probes unless None, Eval-only data unless None) and return the manifest."""
    sets: list[HeldoutSet] = []
    if probes is not None:
        if not probes.is_dir():
            raise HeldoutError(f"{probes}: no probe folder (pass --probes DIR, or --no-probes)")
        sets += probe_sets(probes)
    if data is not None:
        if not data.is_dir():
            raise HeldoutError(f"{data}: no data folder (pass --data DIR or PRISM_DATA, or --no-eval-sets)")
        sets += eval_sets(data)
    if not sets:
        raise HeldoutError("nothing to build (both --no-probes and --no-eval-sets)")
    return write_sets(sets, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probes", type=Path, default=PROBES, help="folder of hand-written probe files")
    ap.add_argument("--data", type=Path, default=None, help="../shared/data (default: PRISM_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-probes", action="store_true")
    ap.add_argument("--no-eval-sets", action="store_true")
    a = ap.parse_args(argv)
    try:
        m = build(None if a.no_probes else a.probes, None if a.no_eval_sets else (a.data or data_dir()), a.out)
    except HeldoutError as e:
        print(f"heldout: {e}", file=sys.stderr)
        return 2
    for name, s in m["sets"].items():
        print(f"{name:32s} {s['role']:8s} {s['kind']:6s} n={s['n']:5d} unsafe={s['positives']:5d}")
    print(f"wrote {len(m['sets'])} sets to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
