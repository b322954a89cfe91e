"""What a guard GGUF says about itself: its prompt format, and its own chat template rendered as pieces.

A guard GGUF usually carries the chat template it was trained with (`tokenizer.chat_template`).
When that template is recognisably the chosen format's, prism renders the prompt with it, so a
re-quantized or updated guard keeps its exact prompt; otherwise the built-in format is used.

The user's text must stay plain text whatever the template does with it, so each message is
rendered as a sentinel and put back as a user piece afterwards. A template that trims messages
(Llama Guard's `| trim`) is noticed by padding the sentinel with spaces.

jinja2 (which llama-cpp-python brings) is imported only when a template is rendered.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from prism_cli.errors import InputError, ModeratorError
from prism_cli.moderators.guard_tokens import Piece

# Guards prism recognises but has no format for: refuse rather than guess.
_UNSUPPORTED = (
    (re.compile(r"llama-?guard-?4"), "Llama Guard 4"),
    (re.compile(r"llama-?guard-?2(?![0-9])"), "Llama Guard 2"),
    (re.compile(r"shield-?gemma-?2-[0-9]+b"), "ShieldGemma 2"),
)


def template_format(template: str | None) -> str | None:
    """The built-in format a chat template is the published template of, or None."""
    t = template or ""
    if "<BEGIN UNSAFE CONTENT CATEGORIES>" in t and "'safe' or 'unsafe'" in t:
        if "<|header_start|>" in t or "[INST]" in t:
            return None  # Llama Guard 4 / Llama Guard 1-2: other tokens, other answers
        return "llama-guard-3" if "S14: Code Interpreter Abuse" in t else "llama-guard-3-1b"
    if "<BEGIN SAFETY POLICY>" in t and "Safety: Controversial" in t:
        return "qwen3guard"
    if "policy expert" in t and "Yes' or 'No'" in t and "image" not in t.lower():
        return "shieldgemma"
    return None


def _name_format(name: str) -> str | None:
    n = name.lower().replace("_", "-").replace(" ", "-")
    for pattern, label in _UNSUPPORTED:
        if pattern.search(n):
            raise ModeratorError(f"{label} is not a supported guard model (supported: Llama Guard 3, Qwen3Guard-Gen, ShieldGemma)")
    if "qwen3guard" in n or "qwen3-guard" in n:
        return "qwen3guard"
    if "shieldgemma" in n or "shield-gemma" in n:
        return "shieldgemma"
    if re.search(r"llama-?guard-?3", n):
        return "llama-guard-3-1b" if re.search(r"(^|[^0-9])1b", n) else "llama-guard-3"
    return None


def detect_prompt_format(path: Path) -> tuple[str, str]:
    """(format, how it was told) for a guard GGUF: its chat template first, then its names.

    A GGUF that is no guard prism knows is an error, never a guess: it would be asked a question
    it was not trained to answer and its "probabilities" would mean nothing.
    """
    from prism_cli.gguf import read_gguf_info

    try:
        info = read_gguf_info(path)
    except InputError as e:
        raise ModeratorError(str(e)) from None
    fmt = template_format(info.get("chat_template"))
    if fmt:
        return fmt, "its chat template"
    for key in ("name", "basename"):
        if info.get(key) and (fmt := _name_format(str(info[key]))):
            return fmt, f"its general.{key}"
    if fmt := _name_format(path.name):
        return fmt, "its file name"
    raise ModeratorError(
        f"{path}: not a guard model prism knows (no Llama Guard 3, Qwen3Guard or ShieldGemma template or name); "
        "name its prompt format: prism models add FILE --name NAME --prompt-format FORMAT"
    )


def render_pieces(template: str, turns: Sequence[tuple[str, str]], variables: dict[str, Any]) -> list[Piece]:
    """Render a chat template for a conversation; message texts come back as user pieces."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def fail(msg: str) -> None:
        raise ModeratorError(f"the guard model's chat template refused the conversation: {msg}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = fail
    marks = [f"\ue000{i}\ue001" for i in range(len(turns))]
    messages = [{"role": r, "content": f" {m} "} for (r, _), m in zip(turns, marks)]
    try:
        out = env.from_string(template).render(messages=messages, add_generation_prompt=True, **variables)
    except jinja2.TemplateError as e:
        raise ModeratorError(f"the guard model's chat template cannot be rendered ({e})") from None
    pieces: list[Piece] = []
    pos = 0
    for m in re.finditer("( ?)\ue000(\\d+)\ue001( ?)", out):
        text = turns[int(m.group(2))][1]
        kept = bool(m.group(1)) and bool(m.group(3))  # the template kept the padding: it does not trim
        start, end = (m.start(), m.end()) if kept else (m.start(2) - 1, m.end(2) + 1)  # else a space is its own
        pieces += [Piece(out[pos:start]), Piece(text if kept else text.strip(), user=True)]
        pos = end
    pieces.append(Piece(out[pos:]))
    return [p for p in pieces if p.text or p.user]
