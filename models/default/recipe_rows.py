"""Rows, labels and guarded file access for the default moderator's recipe data.

Why a module of its own: every loader builds `Row`s through these helpers, and every file read
goes through `_path`, which refuses Eval-only sets and logs what was opened (READ_LOG), so the
"never train on Eval-only data" rule is enforced in one place.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


# Model labels: "unsafe" is the overall head; the others are category heads.
LABELS = ["unsafe", "violent", "crime", "weapons", "hate", "self_harm", "sexual", "cyber", "jailbreak", "toxic"]
CATEGORIES = LABELS[1:]
# Model label -> default policy category id(s). "toxic" (insults, profanity, harassment) has no
# category of its own in the default policy: it feeds the overall P(unsafe) only.
CATEGORY_MAP = {
    "violent": "S1",
    "crime": "S2",
    "weapons": "S9",
    "hate": "S10",
    "self_harm": "S11",
    "sexual": "S12",
    "cyber": ["S2", "S14"],
    "jailbreak": "jailbreak",
}
# What prism.json ships: as above, plus toxic -> the strict policy's "harassment" category (the
# default policy has no such category, so this changes nothing there).
EXPORT_CATEGORY_MAP = {**CATEGORY_MAP, "toxic": "harassment"}

# Folders the data README marks Eval-only (never read here) or not safe/unsafe labelled.
EVAL_ONLY = frozenset({"alpaca", "sorry_bench_fractured", "ethos", "tensor_trust", "malicious_instruct"})
# Files inside Train folders that are Eval-only (the harmless half is Alpaca, CC-BY-NC).
EVAL_ONLY_FILES = frozenset({
    "refusal_direction_splits/harmless_train.json",
    "refusal_direction_splits/harmless_val.json",
    "refusal_direction_splits/harmless_test.json",
})

KINDS = ("request", "content", "jailbreak", "lookalike", "benign", "document", "response")


def data_dir() -> Path:
    env = os.environ.get("PRISM_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass
class Row:
    text: str
    label: int  # 1 unsafe, 0 safe
    cats: frozenset[str]  # category labels (subset of CATEGORIES); empty for safe rows
    source: str  # "folder/file"
    kind: str  # one of KINDS
    sources: list[str] = field(default_factory=list)  # every source holding this text (after dedup)


# Every file the loaders open, so tests can check no Eval-only set was read.
READ_LOG: list[str] = []


def _path(rel: str) -> Path:
    top = rel.split("/", 1)[0]
    if top in EVAL_ONLY or rel in EVAL_ONLY_FILES:
        raise PermissionError(f"{rel} is Eval-only in shared/data/README.md: never train on it")
    READ_LOG.append(rel)
    return data_dir() / rel


def _text(rel: str) -> str:
    return _path(rel).read_text(encoding="utf-8", errors="replace")


def _json(rel: str):
    return json.loads(_text(rel))


def _jsonl(rel: str) -> list[dict]:
    return [json.loads(line) for line in _text(rel).splitlines() if line.strip()]


def _csv(rel: str) -> list[dict]:
    return list(csv.DictReader(_text(rel).lstrip("\ufeff").splitlines(keepends=True)))


# ---------------------------------------------------------------- categories from words
_KW = {
    "weapons": r"\bbombs?\b|explosive|nerve agent|sarin|anthrax|bio ?weapon|biological (weapon|warfare|agent)|chemical (weapon|warfare)|"
    r"nuclear|radiolog|\bguns?\b|firearm|rifle|ammunition|grenade|napalm|weapon|mustard gas|ricin|pathogen|nitroglycerin|"
    r"\btatp\b|detonat|molotov|pipe bomb|toxin|smallpox|plague|uranium|ghost gun|silencer|suppressor",
    "cyber": r"\bhack|malware|ransomware|\bvirus|exploit|ddos|denial of service|phishing|keylogger|sql injection|botnet|trojan|rootkit|"
    r"crack (a |the )?password|password crack|brute[- ]force|backdoor|spyware|\bworm\b|privilege escalation|sandbox|"
    r"reverse shell|zero[- ]day|shellcode|credential|cyber|\bxss\b|buffer overflow",
    "self_harm": r"suicid|kill (myself|yourself|themselves|himself|herself)|self[- ]harm|cut (myself|yourself)|cutting myself|"
    r"anorexi|bulimi|starve (myself|yourself)|overdos|end (my|your) (own )?life|hurt (myself|yourself)|hang (myself|yourself)|"
    r"pro-ana|thinspo|purging",
    "sexual": r"\bsex|porn|erotic|\bnude|naked|explicit|orgasm|genital|fetish|lewd|dirty joke|penis|vagina|\bdick\b|\bcock\b|"
    r"pussy|\bboob|breasts|masturbat|intercourse|\bcum\b|horny|slut|whore|onlyfans|strip ?club|prostitut",
    "hate": r"racis|hate speech|\bslur|inferior|\bjews?\b|jewish|muslim|black people|immigrant|\bgays?\b|lgbt|transgender|"
    r"ethnic|homophob|antisemit|sexis|minorit|religio|discriminat|nigg|fag|retard|supremac|nazi|white power|"
    r"\brace\b|races\b|women are|men are|refugee|disabled|mexican|asian|arab|islam|christian|hindu",
    "violent": r"\bkill|murder|assault|attack|shoot|\bstab|tortur|kidnap|terror|violen|poison|\bhurt|massacre|genocide|"
    r"\babus|\bbeat (up|him|her|them|someone|my)|strangl|mass shooting|assassinat|\bharm (someone|people|others|a|my|him|her)|"
    r"\binjur|arson|hostage|behead|lynch|\bmaim|\brape",
    "crime": r"\bsteal|theft|thief|fraud|\bscam|launder|\bdrugs?\b|cocaine|\bmeth\b|methamphetamine|heroin|fentanyl|counterfeit|"
    r"smuggl|shoplift|burglar|brib|evade tax|tax evasion|identity theft|\bforge|forgery|blackmail|extort|illegal|trafficking|"
    r"piracy|pirated|credit card|insider trading|ponzi|embezzl|evade (the )?police|break into|lock ?pick|hotwire|"
    r"\bcheat|plagiar|bypass|without (getting caught|being detected|detection)|black market|dark ?web|stalk|\bspy on|"
    r"personal information|home address|social security",
}
_KW_RE = {k: re.compile(v, re.I) for k, v in _KW.items()}


def keyword_cats(text: str) -> set[str]:
    return {k for k, rx in _KW_RE.items() if rx.search(text)}


_SOURCE_CATS = {
    # harmbench SemanticCategory
    "chemical_biological": {"weapons"}, "cybercrime_intrusion": {"cyber"}, "illegal": {"crime"},
    "harassment_bullying": {"toxic"}, "misinformation_disinformation": set(), "harmful": set(),
    # strongreject / refusal_direction categories
    "Non-violent crimes": {"crime"}, "Violence": {"violent"}, "Disinformation and deception": set(),
    "Hate, harassment and discrimination": {"hate"}, "Illegal goods and services": {"crime"},
    "Sexual content": {"sexual"}, "Malware/Hacking": {"cyber"},
    # multijail tags
    "Violence & incitement": {"violent"}, "Discrimination & injustice": {"hate"},
    "Hate speech & offensive language": {"hate", "toxic"}, "Theft": {"crime"},
    "Non-violent unethical behavior (e.g. lying, cheating, etc.)": set(), "Animal abuse": {"violent"},
    "Substance abuse & banned substances": {"crime"}, "Bullying & harassment": {"toxic"}, "Weapons": {"weapons"},
    "Adult content": {"sexual"}, "Property crime & vandalism": {"crime"}, "Fraud & deception": {"crime"},
    "Soliciting personally identifiable information": {"crime"}, "Terrorism & organized crime": {"violent", "crime"},
    "Sexual exploitation & human trafficking": {"sexual", "crime"}, "Self-harm": {"self_harm"},
    "Child abuse": {"violent"}, "Drug abuse, weapons, banned substance": {"crime", "weapons"},
    "Conspiracy theories & misinformation": set(), "Controversial topics, politics": set(),
    "Misinformation regarding ethics, laws and safety": set(), "Privacy violation": {"crime"},
    "Financial crime, property crime, theft": {"crime"}, "Terrorism, organized crime": {"violent", "crime"},
}


def _cats(text: str, *source_cats: str, extra: Iterable[str] = ()) -> frozenset[str]:
    out = set(extra) | keyword_cats(text)
    for s in source_cats:
        out |= _SOURCE_CATS.get(s, set())
    return frozenset(out & set(CATEGORIES))


def _unsafe(text: str, source: str, kind: str, *source_cats: str, extra: Iterable[str] = ()) -> Row:
    return Row(text.strip(), 1, _cats(text, *source_cats, extra=extra), source, kind)


def _safe(text: str, source: str, kind: str) -> Row:
    return Row(text.strip(), 0, frozenset(), source, kind)
