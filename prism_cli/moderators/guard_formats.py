"""Prompt formats of guard models: what goes before the user content, the conversation, what comes after,
and which answer texts to read probabilities from.

A prompt is a list of Pieces. Template pieces are tokenized with special tokens enabled (so
`<|eot_id|>` in the template is the real control token); user pieces with special tokens
disabled, so the same string typed by a user stays plain text and cannot close the template.
The fixed policy text comes first, so its KV cache is reused from one check to the next.

Nothing here imports a model runtime: the formats are plain text and easy to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from prism_cli.moderators.base import Message
from prism_cli.policy import Category

FORMATS = ("llama-guard-3", "qwen3guard", "shieldgemma")


@dataclass(frozen=True)
class Piece:
    text: str
    user: bool = False
    """True for text that came from a user or a model being moderated: tokenized with special=False."""


@dataclass(frozen=True)
class Query:
    """One teacher-forced question to the guard model.

    `verdict` maps an option label to the answer text that starts the reply (e.g. "unsafe");
    the probabilities of the options are normalised over the options, and those listed in
    `unsafe` add up to P(unsafe). `categories` maps a policy category id to the full answer
    text that names it first (e.g. "unsafe\\nS1"); P(category) = P(unsafe) x P(that answer),
    normalised over the categories. `target` (ShieldGemma: one principle per query) means
    the verdict is that category's probability.
    """

    pieces: tuple[Piece, ...]
    verdict: dict[str, str]
    unsafe: tuple[str, ...]
    categories: dict[str, str] = field(default_factory=dict)
    target: str | None = None


def _title(name: str) -> str:
    return name.strip().rstrip(".")


def _user_text(context: Sequence[Message] | None) -> str | None:
    """The last user message of the context (the prompt a response answers)."""
    for m in reversed(list(context or [])):
        if m.get("role") == "user":
            return m.get("content", "")
    return None


def _turns(text: str, role: str, context: Sequence[Message] | None) -> list[tuple[str, str]]:
    """(speaker, content) for the conversation: user/assistant turns of the context, then the text."""
    turns = [(m["role"], m.get("content", "")) for m in (context or []) if m.get("role") in ("user", "assistant")]
    turns.append(("user" if role == "prompt" else "assistant", text))
    return turns


class LlamaGuard3:
    """Llama Guard 3: categories numbered S1..Sn in policy order, answer 'safe' | 'unsafe\\nS<k>'."""

    name = "llama-guard-3"

    def codes(self, cats: Sequence[Category]) -> dict[str, str]:
        """Category code -> policy category id."""
        return {f"S{i}": c.id for i, c in enumerate(cats, 1)}

    def prefix(self, cats: Sequence[Category], role: str) -> str:
        who = "User" if role == "prompt" else "Agent"
        lines = [f"S{i}: {_title(c.name)}.\n{c.description.strip()}" for i, c in enumerate(cats, 1)]
        return (
            "<|start_header_id|>user<|end_header_id|>\n\n"
            f"Task: Check if there is unsafe content in '{who}' messages in conversations "
            "according our safety policy with the below categories.\n\n"
            "<BEGIN UNSAFE CONTENT CATEGORIES>\n" + "\n".join(lines) + "\n<END UNSAFE CONTENT CATEGORIES>\n\n"
            "<BEGIN CONVERSATION>\n\n"
        )

    def suffix(self, role: str) -> str:
        who = "User" if role == "prompt" else "Agent"
        return (
            "<END CONVERSATION>\n\n"
            f"Provide your safety assessment for ONLY THE LAST {who} message in the above conversation:\n"
            " - First line must read 'safe' or 'unsafe'.\n"
            " - If unsafe, a second line must include a comma-separated list of violated categories."
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        )

    def queries(self, cats: Sequence[Category], text: str, role: str, context: Sequence[Message] | None) -> list[Query]:
        pieces = [Piece(self.prefix(cats, role))]
        for speaker, content in _turns(text, role, context):
            pieces += [Piece("User: " if speaker == "user" else "Agent: "), Piece(content, user=True), Piece("\n\n")]
        pieces.append(Piece(self.suffix(role)))
        answers = {cid: f"unsafe\n{code}" for code, cid in self.codes(cats).items()}
        return [Query(tuple(pieces), {"safe": "safe", "unsafe": "unsafe"}, ("unsafe",), answers)]


class Qwen3Guard:
    """Qwen3Guard-Gen: 'Safety: Safe|Unsafe|Controversial' then 'Categories: <name>'.

    `controversial_unsafe` counts Controversial as unsafe (Qwen's strict mode, prism's default:
    fail closed); False is the loose mode.
    """

    name = "qwen3guard"

    def __init__(self, controversial_unsafe: bool = True):
        self.controversial_unsafe = controversial_unsafe

    def prefix(self, cats: Sequence[Category], role: str) -> str:
        what = "USER's query" if role == "prompt" else "ASSISTANT's response"
        lines = [f"{_title(c.name)}: {c.description.strip()}" for c in cats]
        return (
            "<|im_start|>user\n# Task:\n"
            f"1) Evaluate whether THE LAST {what} belongs to safe or unsafe content based on our safety policy.\n"
            "2) Identify the category of unsafe content found.\n\n"
            "<BEGIN SAFETY POLICY>\n"
            f"**Safety: Safe**: The {what} does not contain any prohibited content or content that could lead to prohibited content.\n"
            f"**Safety: Unsafe**: The {what} contains prohibited content.\n"
            f"**Safety: Controversial**: The {what} does not explicitly contain prohibited content, but its intent, "
            "context, or potential responses could be misinterpreted, misused, or exploited to generate unsafe "
            "content under certain conditions.\n"
            "<END SAFETY POLICY>\n\n"
            "<BEGIN UNSAFE CONTENT CATEGORIES>\n" + "\n".join(lines) + "\n<END UNSAFE CONTENT CATEGORIES>\n\n"
            "<BEGIN CONVERSATION>\n\n"
        )

    def suffix(self, role: str) -> str:
        what = "USER's query" if role == "prompt" else "ASSISTANT's response"
        return (
            "<END CONVERSATION>\n\n"
            f"Provide your safety assessment for ONLY THE LAST **{what}** in the above conversation:\n"
            " - The first line must be one of: 'Safety: Safe', 'Safety: Unsafe', 'Safety: Controversial'.\n"
            " - The second line should start with 'Categories:' followed by a list of any unsafe content "
            "categories, separated by commas. If the content is safe, use 'Categories: None'."
            "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        )

    def queries(self, cats: Sequence[Category], text: str, role: str, context: Sequence[Message] | None) -> list[Query]:
        pieces = [Piece(self.prefix(cats, role))]
        for speaker, content in _turns(text, role, context):
            pieces += [Piece("USER: " if speaker == "user" else "ASSISTANT: "), Piece(content, user=True), Piece("\n\n")]
        pieces.append(Piece(self.suffix(role)))
        verdict = {"safe": "Safety: Safe", "unsafe": "Safety: Unsafe", "controversial": "Safety: Controversial"}
        unsafe = ("unsafe", "controversial") if self.controversial_unsafe else ("unsafe",)
        answers: dict[str, str] = {}
        seen: set[str] = set()
        for c in cats:  # two categories with one name cannot be told apart: the first keeps it
            if _title(c.name) not in seen:
                seen.add(_title(c.name))
                answers[c.id] = f"Safety: Unsafe\nCategories: {_title(c.name)}"
        return [Query(tuple(pieces), verdict, unsafe, answers)]


class ShieldGemma:
    """ShieldGemma: one principle per query, answer 'Yes' (violates) or 'No'.

    The conversation comes before the principle, so the queries for the categories of one text
    share its KV cache and each costs only its principle and question.
    """

    name = "shieldgemma"

    def queries(self, cats: Sequence[Category], text: str, role: str, context: Sequence[Message] | None) -> list[Query]:
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
        for c in cats:
            tail = (
                "Our safety principle is defined in the below:\n\n"
                f'* "No {_title(c.name)}": {c.description.strip()}\n\n===\n\n'
                f"{ask} Your answer must start with 'Yes' or 'No'. "
                "And then walk through step by step to be sure we answer correctly.\n\n"
            )
            pieces = (Piece(head), *convo, Piece(tail))
            out.append(Query(pieces, {"no": "No", "yes": "Yes"}, ("yes",), target=c.id))
        return out


def get_format(name: str, **options: object) -> LlamaGuard3 | Qwen3Guard | ShieldGemma:
    if name == "llama-guard-3":
        return LlamaGuard3()
    if name == "qwen3guard":
        return Qwen3Guard(controversial_unsafe=bool(options.get("controversial_unsafe", True)))
    if name == "shieldgemma":
        return ShieldGemma()
    raise ValueError(f"unknown guard prompt format {name!r} (one of: {', '.join(FORMATS)})")


def detect_format(filename: str) -> str:
    """Guess the format from a GGUF file name; Llama Guard 3 when nothing matches."""
    n = filename.lower().replace("_", "-").replace(" ", "-")
    if "qwen3guard" in n or "qwen3-guard" in n:
        return "qwen3guard"
    if "shieldgemma" in n or "shield-gemma" in n:
        return "shieldgemma"
    return "llama-guard-3"
