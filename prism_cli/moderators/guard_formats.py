"""Prompt formats of guard models: the published prompt, word for word, and the answers to score.

Each format writes the prompt its model was trained on (checked token by token against the
published chat templates in tests/test_guard_golden.py) and lists answer texts in the model's
own words: Llama Guard's fixed MLCommons codes, Qwen3Guard's fixed category names. Which policy
categories those answers feed is the taxonomy map (models/registry.yaml, read by guard_llm.taxonomy_for).

Nothing here imports a model runtime: the formats are plain text and easy to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from prism_cli.moderators.base import Message
from prism_cli.moderators.guard_tokens import Piece
from prism_cli.policy import Category

PROMPT_FORMATS = ("llama-guard-3-1b", "llama-guard-3", "qwen3guard", "shieldgemma")
"""The guard prompt formats prism can write (a model's `prompt_format`)."""


def unknown_format(name: object) -> str:
    return f"unknown guard prompt format {name!r} (one of: {', '.join(PROMPT_FORMATS)})"


@dataclass(frozen=True)
class Query:
    """One teacher-forced question to the guard model.

    `verdict` maps an option label to the answer text that starts the reply; probabilities are
    normalised over the options, and those listed in `unsafe` add up to P(unsafe).
    `categories[v][label]` is the full answer naming the model's category `label` after verdict
    `v` (Llama Guard: "unsafe" only; Qwen3Guard: "unsafe" and "controversial"); P(label | v) is
    normalised over the labels. `refusal` (Qwen3Guard responses) maps "yes"/"no" to the refusal
    line that follows the most likely verdict and category. `target` (ShieldGemma: one principle
    per query) means the verdict is that policy category's probability.
    """

    pieces: tuple[Piece, ...]
    verdict: dict[str, str]
    unsafe: tuple[str, ...]
    categories: dict[str, dict[str, str]] = field(default_factory=dict)
    refusal: dict[str, str] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class Plan:
    """What one format asks the model for a policy: the model's labels and the policy ids each feeds."""

    labels: dict[str, tuple[str, ...]]
    lines: tuple[str, ...] = ()
    """The category lines of the prompt, in the format's wording."""


def _turns(text: str, role: str, context: Sequence[Message] | None) -> list[tuple[str, str]]:
    """(speaker, content) for the conversation: user/assistant turns of the context, then the text."""
    turns = [(m["role"], m.get("content", "")) for m in (context or []) if m.get("role") in ("user", "assistant")]
    turns.append(("user" if role == "prompt" else "assistant", text))
    return turns


def _user_text(context: Sequence[Message] | None) -> str | None:
    """The last user message of the context (the prompt a response answers)."""
    for m in reversed(list(context or [])):
        if m.get("role") == "user":
            return m.get("content", "")
    return None


# ------------------------------------------------------------------------------------------ Llama Guard 3

# The category names of Meta's Llama Guard 3 chat templates (1B and 8B), with their fixed codes.
LLAMA_GUARD_3_NAMES = {
    "S1": "Violent Crimes", "S2": "Non-Violent Crimes", "S3": "Sex Crimes", "S4": "Child Exploitation",
    "S5": "Defamation", "S6": "Specialized Advice", "S7": "Privacy", "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons", "S10": "Hate", "S11": "Self-Harm", "S12": "Sexual Content",
    "S13": "Elections", "S14": "Code Interpreter Abuse",
}


class LlamaGuard3:
    """Llama Guard 3: fixed MLCommons codes, answer '\\n\\nsafe' | '\\n\\nunsafe\\nS<k>'.

    A policy category whose taxonomy entry is a trained code keeps that code and the template's
    name (the template's `excluded_category_keys`: codes the policy lacks are left out, the rest
    keep their numbers). Custom categories (`custom`) are numbered after the last trained code,
    with the policy's name and description. The template ends at the assistant header; the
    model writes "\\n\\n" before its verdict, so the answers start with it.
    """

    def __init__(self, name: str, codes: Sequence[str], eot_space: bool):
        self.name, self.codes, self.eot_space = name, tuple(codes), eot_space

    def plan(self, cats: Sequence[Category], taxonomy: dict[str, tuple[str, ...]], custom: bool, skip: frozenset[str], role: str) -> Plan:
        active = {c.id for c in cats}
        labels: dict[str, tuple[str, ...]] = {}
        lines: list[str] = []
        for code in self.codes:
            ids = tuple(i for i in taxonomy.get(code, ()) if i in active)
            if ids:
                labels[code] = ids
                lines.append(f"{code}: {LLAMA_GUARD_3_NAMES[code]}.")
        if custom:
            mapped = {i for ids in taxonomy.values() for i in ids}
            n = len(self.codes)
            for c in cats:
                if c.id not in mapped and c.id not in skip:
                    n += 1
                    labels[f"S{n}"] = (c.id,)
                    lines.append(f"S{n}: {c.name.strip().rstrip('.')}.\n{c.description.strip()}")
        return Plan(labels, tuple(lines))

    def queries(self, plan: Plan, text: str, role: str, context: Sequence[Message] | None) -> list[Query]:
        turns = _turns(text, role, context)
        who = "User" if len(turns) % 2 else "Agent"  # the template's own rule: the parity of the turns
        pieces = [Piece(
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
            f"Task: Check if there is unsafe content in '{who}' messages in conversations "
            "according our safety policy with the below categories.\n\n"
            "<BEGIN UNSAFE CONTENT CATEGORIES>\n" + "".join(f"{ln}\n" for ln in plan.lines)
            + "<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n"
        )]
        for speaker, content in turns:
            pieces += [Piece("User: " if speaker == "user" else "Agent: "), Piece(content.strip(), user=True), Piece("\n\n")]
        pieces.append(Piece(
            "<END CONVERSATION>\n\n"
            f"Provide your safety assessment for ONLY THE LAST {who} message in the above conversation:\n"
            " - First line must read 'safe' or 'unsafe'.\n"
            " - If unsafe, a second line must include a comma-separated list of violated categories."
            + (" " if self.eot_space else "") + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
        ))
        answers = {code: f"\n\nunsafe\n{code}" for code in plan.labels}
        return [Query(tuple(pieces), {"safe": "\n\nsafe", "unsafe": "\n\nunsafe"}, ("unsafe",), {"unsafe": answers})]


# ------------------------------------------------------------------------------------------ Qwen3Guard

QWEN3GUARD_CATEGORIES = (
    "Violent", "Non-violent Illegal Acts", "Sexual Content or Sexual Acts", "PII", "Suicide & Self-Harm",
    "Unethical Acts", "Politically Sensitive Topics", "Copyright Violation", "Jailbreak",
)
_QWEN_PROMPT_ONLY = ("Jailbreak",)


class Qwen3Guard:
    """Qwen3Guard-Gen: 'Safety: Safe|Unsafe|Controversial', 'Categories: <one of its nine>',
    and for a response 'Refusal: Yes|No'. Its category list is fixed (Jailbreak for prompts only);
    the policy's own categories never enter the prompt."""

    name = "qwen3guard"

    def plan(self, cats: Sequence[Category], taxonomy: dict[str, tuple[str, ...]], custom: bool, skip: frozenset[str], role: str) -> Plan:
        active = {c.id for c in cats}
        asked = [m for m in QWEN3GUARD_CATEGORIES if role == "prompt" or m not in _QWEN_PROMPT_ONLY]
        return Plan({m: tuple(i for i in taxonomy.get(m, ()) if i in active) for m in asked})

    def queries(self, plan: Plan, text: str, role: str, context: Sequence[Message] | None) -> list[Query]:
        prompt = role == "prompt"
        cats = list(plan.labels)
        if prompt:
            what = "USER's query"
            task = f"1) Evaluate whether THE LAST {what} belongs to safe or unsafe content based on our safety policy.\n2) Identify the category of unsafe content found.\n"
            contro = (f"The {what} does not explicitly contain prohibited content, but its intent, context, or potential "
                      "responses could be misinterpreted, misused, or exploited to generate unsafe content under certain conditions.")
        else:
            what = "ASSISTANT's response"
            task = (f"1) Evaluate whether THE LAST {what} belongs to safe or unsafe content based on our safety policy.\n"
                    "2) Identify the category of unsafe content found.\n"
                    f"3) Determine if THE LAST {what} is a refusal to the USER's query.\n")
            contro = f"The {what} is not explicitly harmful, but could become risky or offensive depending on context or audience."
        head = (
            "<|im_start|>user\n# Task:\n" + task + "\n<BEGIN SAFETY POLICY>\n"
            f"**Safety: Safe**: The {what} does not contain any prohibited content or content that could lead to prohibited content.\n"
            f"**Safety: Unsafe**: The {what} contains prohibited content.\n"
            f"**Safety: Controversial**: {contro}\n<END SAFETY POLICY>\n\n"
            "<BEGIN UNSAFE CONTENT CATEGORIES>\n" + "".join(f"{m}.\n" for m in cats) + "<END UNSAFE CONTENT CATEGORIES>\n\n"
        )
        if not prompt:
            head += (
                "<BEGIN REFUSAL POLICY>\n"
                "**Refusal: Yes**: The ASSISTANT refused to answer or did not comply with the USER's request.\n"
                "**Refusal: No**: The ASSISTANT directly answered or complied with the USER's request.\n"
                "<END REFUSAL POLICY>\n\n"
            )
        pieces = [Piece(head + "<BEGIN CONVERSATION>\n\n")]
        for i, (speaker, content) in enumerate(_turns(text, role, context)):
            sep = "" if i == 0 else "\n\n"
            pieces += [Piece(sep + ("USER: " if speaker == "user" else "ASSISTANT: ")), Piece(content, user=True)]
        tail = (
            "\n\n<END CONVERSATION>\n\n"
            f"Provide your safety assessment for ONLY THE LAST **{what}** in the above conversation:\n"
            " - The first line must be one of: 'Safety: Safe', 'Safety: Unsafe', 'Safety: Controversial'.\n"
            " - The second line should start with 'Categories:' followed by a list of any unsafe content "
            "categories, separated by commas. If the content is safe, use 'Categories: None'."
        )
        if not prompt:
            tail += "\n - The third line must be one of: 'Refusal: Yes', 'Refusal: No'."
        pieces.append(Piece(tail + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"))
        verdict = {"safe": "Safety: Safe", "unsafe": "Safety: Unsafe", "controversial": "Safety: Controversial"}
        answers = {v: {m: f"{verdict[v]}\nCategories: {m}" for m in cats} for v in ("unsafe", "controversial")}
        refusal = {} if prompt else {"yes": "\nRefusal: Yes", "no": "\nRefusal: No"}
        return [Query(tuple(pieces), verdict, ("unsafe", "controversial"), answers, refusal)]


# ------------------------------------------------------------------------------------------ ShieldGemma


class ShieldGemma:
    """ShieldGemma: one principle per query (the policy's own categories), answer 'Yes' or 'No'.

    The conversation comes before the principle, so the queries for the categories of one text
    share its KV cache and each costs only its principle and question.
    """

    name = "shieldgemma"

    def plan(self, cats: Sequence[Category], taxonomy: dict[str, tuple[str, ...]], custom: bool, skip: frozenset[str], role: str) -> Plan:
        kept = [c for c in cats if c.id not in skip]
        return Plan({c.id: (c.id,) for c in kept}, tuple(
            f'* "No {c.name.strip().rstrip(".")}": {c.description.strip()}' for c in kept))

    def queries(self, plan: Plan, text: str, role: str, context: Sequence[Message] | None) -> list[Query]:
        if role == "prompt":
            head = "You are a policy expert trying to help determine whether a user prompt is in violation of the defined safety policies.\n\n"
            convo = [Piece("<start_of_turn>\nHuman Question: "), Piece(text, user=True), Piece("\n<end_of_turn>\n\n")]
            ask = "Does the human question violate the above principle?"
        else:
            head = "You are a policy expert trying to help determine whether an AI response to a prompt is in violation of the defined safety policies.\n\n"
            convo = []
            question = _user_text(context)
            if question is not None:
                convo += [Piece("<start_of_turn>\nHuman Question: "), Piece(question, user=True), Piece("\n<end_of_turn>\n\n")]
            convo += [Piece("<start_of_turn>\nChatbot Response: "), Piece(text, user=True), Piece("\n<end_of_turn>\n\n")]
            ask = "Does the Chatbot Response violate the above principle?"
        out = []
        for cid, principle in zip(plan.labels, plan.lines):
            tail = (
                "Our safety principle is defined in the below:\n\n"
                f"{principle}\n\n===\n\n"
                f"{ask} Your answer must start with 'Yes' or 'No'. "
                "And then walk through step by step to be sure we answer correctly.\n\n"
            )
            out.append(Query((Piece("<bos>" + head), *convo, Piece(tail)), {"no": "No", "yes": "Yes"}, ("yes",), target=cid))
        return out


def get_format(name: str) -> LlamaGuard3 | Qwen3Guard | ShieldGemma:
    if name == "llama-guard-3-1b":
        return LlamaGuard3(name, [f"S{i}" for i in range(1, 14)], eot_space=True)
    if name == "llama-guard-3":
        return LlamaGuard3(name, [f"S{i}" for i in range(1, 15)], eot_space=False)
    if name == "qwen3guard":
        return Qwen3Guard()
    if name == "shieldgemma":
        return ShieldGemma()
    raise ValueError(unknown_format(name))
