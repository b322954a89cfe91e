"""Chat templates for GGUF models that carry none (or when the user names one with --chat-format).

A template turns the messages into one prompt string that ends where the assistant's reply
begins, and names the strings that end a reply. The GGUF's own Jinja template wins when it
exists (engines/local.py); these built-ins are the fallback, chosen from the special tokens
the model's vocabulary actually has, so a Gemma base model gets Gemma turns, not Llama-2 ones.
Pure string work: no runtime imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from prism_cli.engines.base import ChatMessage

Render = Callable[[Sequence[ChatMessage]], str]


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    render: Render
    """messages -> prompt text, ending with the assistant turn's opening."""
    stop: tuple[str, ...] = ()
    """Text that ends a reply when the model writes it (besides end-of-generation tokens)."""
    special_tokens: tuple[str, ...] = ()
    """Control tokens the format relies on; a vocabulary holding the first one suits it."""


def _system_and_turns(messages: Sequence[ChatMessage]) -> tuple[str, list[ChatMessage]]:
    """Split leading system messages off (joined), for formats without a system role."""
    system = [m["content"] for m in messages if m.get("role") == "system"]
    turns = [m for m in messages if m.get("role") != "system"]
    return "\n\n".join(system), turns


def _gemma(messages: Sequence[ChatMessage]) -> str:
    # Gemma has no system role: the system text opens the first user turn.
    system, turns = _system_and_turns(messages)
    out: list[str] = []
    for i, m in enumerate(turns):
        role = "model" if m["role"] == "assistant" else "user"
        content = m["content"]
        if i == 0 and system and role == "user":
            content = f"{system}\n\n{content}"
        out.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
    if system and not turns:
        out.append(f"<start_of_turn>user\n{system}<end_of_turn>\n")
    out.append("<start_of_turn>model\n")
    return "".join(out)


def _chatml(messages: Sequence[ChatMessage]) -> str:
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def _llama3(messages: Sequence[ChatMessage]) -> str:
    body = "".join(
        f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages
    )
    return body + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _phi3(messages: Sequence[ChatMessage]) -> str:
    body = "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)
    return body + "<|assistant|>\n"


def _mistral(messages: Sequence[ChatMessage]) -> str:
    # [INST] wraps user turns; the system text joins the first one.
    system, turns = _system_and_turns(messages)
    out: list[str] = []
    first = True
    for m in turns:
        if m["role"] == "assistant":
            out.append(f"{m['content']}</s>")
            continue
        content = f"{system}\n\n{m['content']}" if first and system else m["content"]
        first = False
        out.append(f"[INST] {content} [/INST]")
    if first and system:
        out.append(f"[INST] {system} [/INST]")
    return "".join(out)


def _plain(messages: Sequence[ChatMessage]) -> str:
    # For vocabularies with no chat tokens at all: a transcript the model can continue.
    system, turns = _system_and_turns(messages)
    out = [f"{system}\n\n"] if system else []
    for m in turns:
        who = "Assistant" if m["role"] == "assistant" else "User"
        out.append(f"{who}: {m['content']}\n")
    out.append("Assistant:")
    return "".join(out)


BUILTIN: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        ChatTemplate("gemma", _gemma, ("<end_of_turn>", "<start_of_turn>"), ("<start_of_turn>", "<end_of_turn>")),
        ChatTemplate("chatml", _chatml, ("<|im_end|>", "<|im_start|>"), ("<|im_start|>", "<|im_end|>")),
        ChatTemplate("llama-3", _llama3, ("<|eot_id|>", "<|start_header_id|>"), ("<|start_header_id|>", "<|eot_id|>")),
        ChatTemplate("phi-3", _phi3, ("<|end|>", "<|user|>"), ("<|assistant|>", "<|end|>")),
        ChatTemplate("mistral", _mistral, ("</s>", "[INST]"), ("[INST]", "[/INST]")),
        ChatTemplate("plain", _plain, ("\nUser:",)),
    )
}
GGUF = "gguf"
"""--chat-format value meaning: the template stored in the GGUF (the default)."""


def names() -> list[str]:
    return [GGUF, *BUILTIN]


def get(name: str) -> ChatTemplate:
    """A built-in template by name; ValueError naming the choices otherwise."""
    try:
        return BUILTIN[name]
    except KeyError:
        raise ValueError(f"unknown chat format {name!r} (choose from: {', '.join(names())})") from None


def guess(has_control_token: Callable[[str], bool]) -> ChatTemplate:
    """The built-in whose turn tokens this vocabulary has as single control tokens; else plain."""
    for t in BUILTIN.values():
        if t.special_tokens and has_control_token(t.special_tokens[0]):
            return t
    return BUILTIN["plain"]
