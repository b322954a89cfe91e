"""Readers of the Eval-only sets of ../shared/data for the held-out harness (heldout.py, whose
docstring says how each set is built), and the pieces every held-out set shares.

EVALUATION ONLY, like heldout.py: no code is shared with the training recipe, and importing
this module from train.py or recipe_*.py raises ImportError.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import random
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree


def _refuse_training_importers() -> None:
    """Training code must never see these sets: refuse to load under train.py or recipe_*.py."""
    for frame in inspect.stack(0)[1:]:
        name = Path(frame.filename).name
        if name == "train.py" or name.startswith("recipe_"):
            raise ImportError(f"the held-out harness is evaluation-only and may not be imported from {name}")


_refuse_training_importers()

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEED = 20261203
ALPACA_N = 1000
REFUSAL_HARMLESS_N = 500
SORRY_SAFE = 500
XSAFETY_PER_TYPE = 15
TENSOR_TRUST_PER_FILE = 250


class HeldoutError(Exception):
    """Bad or missing input, named by file:line."""


@dataclass
class HeldoutSet:
    name: str
    role: str
    group: str  # probe | obfuscation | eval
    note: str
    rows: list[dict] = field(default_factory=list)
    variant: str | None = None

    @property
    def kind(self) -> str:
        labels = {r["label"] for r in self.rows}
        return "binary" if labels == {0, 1} else "recall" if labels == {1} else "fpr"


def row(text: str, label: int, category: str | None = None) -> dict:
    return {"text": text, "label": label, "category": category}


# ---------------------------------------------------------------- helpers


def _key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def dedupe(rows: list[dict], name: str, strict: bool) -> list[dict]:
    """Drop repeated texts. The same text under both labels is an error in hand-written probes
    (strict) and is dropped altogether from public data, whose labels we cannot fix."""
    seen: dict[str, int] = {}
    conflict: set[str] = set()
    for r in rows:
        k = _key(r["text"])
        if k in seen and seen[k] != r["label"]:
            if strict:
                raise HeldoutError(f"{name}: the same text is labeled both safe and unsafe: {r['text'][:80]!r}")
            conflict.add(k)
        seen.setdefault(k, r["label"])
    out, kept = [], set()
    for r in rows:
        k = _key(r["text"])
        if k not in conflict and k not in kept:
            kept.add(k)
            out.append(r)
    return out


def sample(items: list, k: int, key: str) -> list:
    """k items in their original order, the same k on every run (seeded by SEED and key)."""
    if len(items) <= k:
        return list(items)
    idx = sorted(random.Random(f"{SEED}:{key}").sample(range(len(items)), k))
    return [items[i] for i in idx]


def need(path: Path) -> Path:
    if not path.exists():
        raise HeldoutError(f"{path}: not found")
    return path


def _json(path: Path):
    try:
        return json.loads(need(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HeldoutError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def _jsonl(path: Path) -> list[dict]:
    out = []
    for no, line in enumerate(need(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise HeldoutError(f"{path}:{no}: invalid JSON ({e.msg})") from None
    return out


def _clean(text: str) -> str:
    return text.replace("\ufeff", "").strip()


# ---------------------------------------------------------------- Eval-only sets of ../shared/data


def baheti(d: Path) -> list[HeldoutSet]:
    turns, replies = [], []
    for split in ("dev", "test"):
        for rec in _jsonl(d / "baheti_offensive_reddit_threads" / "data" / "ToxiChat" / f"{split}.jsonl"):
            for t in rec["reddit_thread"]:
                turns.append(row(_clean(t["text"]), int(t["offense_label"] == "Offensive")))
            for k in ("final_dgpt_response", "final_gpt3_response"):
                if rec.get(k):
                    replies.append(row(_clean(rec[k]["text"]), int(rec[k]["offense_label"] == "Offensive")))
    return [HeldoutSet("baheti_reddit_turns", "prompt", "eval", "ToxiChat (Baheti 2021) dev+test Reddit turns, Offensive vs Safe", turns),
            HeldoutSet("baheti_chatbot_replies", "response", "eval", "DialoGPT/GPT-3 replies to those threads, Offensive vs Safe", replies)]


def safety_tuned_llamas(d: Path) -> list[HeldoutSet]:
    ev = d / "safety_tuned_llamas" / "data" / "evaluation"

    def instr(name: str) -> list[str]:
        return [_clean(t) for t in _json(ev / f"{name}.json")["instructions"]]

    mixed = [row(t, 1, name[2:]) for name in ("I-CoNa", "I-Controversial", "I-MaliciousInstructions") for t in instr(name)]
    mixed += [row(t, 0) for t in instr("I-Alpaca")]
    phys = [row(t, 1) for t in instr("I-PhysicalSafetyUnsafe")] + [row(t, 0) for t in instr("I-PhysicalSafetySafe")]
    return [HeldoutSet("safety_tuned_llamas", "prompt", "eval", "I-CoNa/I-Controversial/I-MaliciousInstructions vs I-Alpaca", mixed),
            HeldoutSet("safety_tuned_llamas_physical", "prompt", "eval", "physical-safety instructions, unsafe vs safe advice", phys)]


def bio_overrefusal(d: Path) -> list[HeldoutSet]:
    rows = [row(_clean(r["query"]), 0, f"tier{r['tier']}") for r in _jsonl(d / "bio_overrefusal" / "data" / "queries.jsonl")
            if r["legitimacy"] == "legitimate" and int(r["tier"]) <= 4]
    return [HeldoutSet("bio_overrefusal", "prompt", "eval", "legitimate biology questions, tiers 1-4, all safe", rows)]


_SORRY_GROUPS = ((5, "hate_speech"), (25, "crimes_torts"), (40, "inappropriate_topics"), (45, "unqualified_advice"))


def _csv_dicts(path: Path) -> list[dict]:
    with open(need(path), encoding="utf-8", errors="replace", newline="") as f:
        return list(csv.DictReader(f))


def sorry_bench(d: Path) -> list[HeldoutSet]:
    base = d / "sorry_bench_fractured"

    def group(cid: str) -> str:
        return next(name for top, name in _SORRY_GROUPS if int(cid) <= top)

    prompts = [row(_clean(r["prompt"]), 1, group(r["sorry_category_id"])) for r in _csv_dicts(base / "sorry_bench_prompts_450.csv")]
    judged = _csv_dicts(base / "sorry_bench_vanilla_responses_llmjudged.csv")
    harmful = [row(r["response"].strip(), 1) for r in judged if r["llm_judge_label"] == "Harmful & Relevant Answer" and r["response"].strip()]
    safe = [row(r["response"].strip(), 0) for r in judged if r["llm_judge_label"] == "Harmless Answer" and r["response"].strip()]
    return [HeldoutSet("sorry_bench_prompts", "prompt", "eval", "SORRY-Bench prompts, all unsafe (category = group)", prompts),
            HeldoutSet("sorry_bench_responses", "response", "eval",
                       f"LLM-judged answers, harmful & relevant vs harmless (sample of {SORRY_SAFE})",
                       harmful + sample(dedupe(safe, "sorry_safe", strict=False), SORRY_SAFE, "sorry_safe"))]


def _xlsx_strings(path: Path) -> list[str]:
    """The cells of a one-column .xlsx, in order (shared strings), with the standard library only."""
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(need(path)) as z:
        strings = ["".join(t.text or "" for t in si.iter(f"{ns}t"))
                   for si in ElementTree.fromstring(z.read("xl/sharedStrings.xml")).iter(f"{ns}si")]
        sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
    return [strings[int(c.find(f"{ns}v").text)] for c in sheet.iter(f"{ns}c")
            if c.get("t") == "s" and c.find(f"{ns}v") is not None]


def _xsafety_lines(path: Path) -> list[str]:
    """One prompt per line; the CSV quoting of these files is broken, so quotes are dropped."""
    if path.suffix == ".xlsx":
        raw = _xlsx_strings(path)
    else:
        raw = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [t for t in (" ".join(x.replace("\ufeff", "").replace('"', " ").split()) for x in raw) if t]


_XSAFETY_TYPO = {"Crimes_And_Illegal_Activitie": "Crimes_And_Illegal_Activities"}  # the ru file's name


def xsafety(d: Path) -> list[HeldoutSet]:
    base = need(d / "xsafety")
    langs = sorted(p.name for p in base.iterdir() if p.is_dir())
    files: dict[str, dict[str, Path]] = {}
    for lang in langs:
        for p in sorted((base / lang).iterdir()):
            if p.suffix in (".csv", ".xlsx") and "comm" not in p.stem:
                rtype = re.sub(r"_(n|en)$", "", p.stem)
                rtype = _XSAFETY_TYPO.get(rtype, rtype)
                files.setdefault(rtype, {})[lang] = p
    rows = []
    for rtype, per_lang in sorted(files.items()):
        texts = {lang: _xsafety_lines(p) for lang, p in per_lang.items()}
        n = min(len(t) for t in texts.values())
        idx = sample(list(range(n)), XSAFETY_PER_TYPE, f"xsafety:{rtype}")
        for lang, t in sorted(texts.items()):
            rows += [{**row(t[i], 1, "es" if lang == "sp" else lang), "type": rtype} for i in idx]
    return [HeldoutSet("xsafety", "prompt", "eval", f"XSafety, {len(files)} risk types x {len(langs)} languages, all unsafe (category = language)", rows)]


def ethos(d: Path) -> list[HeldoutSet]:
    path = need(d / "ethos" / "Ethos_Dataset_Binary.csv")
    rows = []
    for no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()[1:], 2):
        if not line.strip():
            continue
        if line.startswith('"') and line.endswith('"'):  # a quoted line: the score sits inside the quotes
            line = line[1:-1].replace('""', '"')
        text, sep, score = line.rpartition(";")
        try:
            rows.append(row(_clean(text), int(float(score) >= 0.5)))
        except ValueError:
            raise HeldoutError(f"{path}:{no}: no isHate score at the end of the line") from None
    return [HeldoutSet("ethos", "prompt", "eval", "ETHOS binary hate speech, isHate >= 0.5 vs < 0.5", rows)]


def malicious_instruct(d: Path) -> list[HeldoutSet]:
    lines = need(d / "malicious_instruct" / "malicious_instruct.txt").read_text(encoding="utf-8").splitlines()
    return [HeldoutSet("malicious_instruct", "prompt", "eval", "MaliciousInstruct, all unsafe", [row(_clean(t), 1) for t in lines if t.strip()])]


def tensor_trust(d: Path) -> list[HeldoutSet]:
    rows = []
    for kind in ("hijacking", "extraction"):
        recs = _jsonl(d / "tensor_trust" / f"{kind}_robustness_dataset.jsonl")
        attacks = dedupe([row(r["attack"].strip(), 1, kind) for r in recs if r["attack"].strip()], kind, strict=False)
        rows += sample(attacks, TENSOR_TRUST_PER_FILE, f"tensor_trust:{kind}")
    return [HeldoutSet("tensor_trust_attacks", "prompt", "eval", "Tensor Trust hijacking and extraction attacks, all unsafe", rows)]


def alpaca_sets(d: Path) -> list[HeldoutSet]:
    harmless = [_clean(r["instruction"]) for r in _json(d / "refusal_direction_splits" / "harmless_test.json")]
    rd_rows = sample(dedupe([row(t, 0) for t in harmless if t], "rd", strict=False), REFUSAL_HARMLESS_N, "refusal_harmless")
    taken = {_key(r["text"]) for r in rd_rows}
    alp = [row(_clean(r["instruction"]), 0) for r in _json(d / "alpaca" / "alpaca.json") if r["instruction"].strip()]
    alp = sample(dedupe([r for r in alp if _key(r["text"]) not in taken], "alpaca", strict=False), ALPACA_N, "alpaca")
    return [HeldoutSet("alpaca", "prompt", "eval", f"{ALPACA_N} Alpaca instructions, all safe", alp),
            HeldoutSet("refusal_direction_harmless", "prompt", "eval", f"{REFUSAL_HARMLESS_N} harmless test instructions, all safe", rd_rows)]


EVAL_BUILDERS = (baheti, safety_tuned_llamas, bio_overrefusal, sorry_bench, xsafety, ethos, malicious_instruct, tensor_trust, alpaca_sets)


def eval_sets(data: Path) -> list[HeldoutSet]:
    sets = [s for build in EVAL_BUILDERS for s in build(data)]
    for s in sets:
        s.rows = dedupe([r for r in s.rows if r["text"]], s.name, strict=False)
    return sets


def data_dir() -> Path:
    env = os.environ.get("PRISM_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"
