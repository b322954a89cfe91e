"""Token ids of a guard prompt, as the model saw them in training.

A published template is rendered to one string and tokenized in one call, so BPE merges run
across what prism builds as separate pieces (": How", "?\\n\\n"). prism therefore splits the
prompt only where the real tokenizer cannot merge: at control-token literals of the template
(`<|eot_id|>`, `<|im_start|>`...). Every run of plain text between two of them (template text
and the user's text together) is tokenized in one call with special tokens off, so a user who
types `<|eot_id|>` gets plain text, never the control token.

The tokenizer is anything with `tokenize(bytes, add_bos, special)` and `is_control(id)`:
llama.cpp's in production, the real Llama 3 / Qwen tokenizers in the golden tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, Sequence

# A control token's literal looks like <...> with no spaces: <|eot_id|>, <start_of_turn>, <bos>.
_CANDIDATE = re.compile(r"<[^<>\s]{1,64}>")


@dataclass(frozen=True)
class Piece:
    text: str
    user: bool = False
    """True for text that came from a user or a model being moderated: never parsed for control tokens."""


class Tokenizer(Protocol):
    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]: ...

    def is_control(self, token: int) -> bool: ...


class PromptTokens:
    """Pieces -> token ids: split at control literals of template text, one tokenize call per plain run."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self._controls: dict[str, int | None] = {}

    def control_id(self, literal: str) -> int | None:
        """The control token a literal stands for, or None if it is plain text for this vocabulary."""
        if literal not in self._controls:
            ids = self.tok.tokenize(literal.encode("utf-8"), False, True)
            self._controls[literal] = ids[0] if len(ids) == 1 and self.tok.is_control(ids[0]) else None
        return self._controls[literal]

    def runs(self, pieces: Sequence[Piece]) -> list[str | int]:
        """The prompt as plain-text runs (str) and control tokens (int), in order."""
        out: list[str | int] = []
        buf: list[str] = []
        for p in pieces:
            if p.user:
                buf.append(p.text)
                continue
            pos = 0
            for m in _CANDIDATE.finditer(p.text):
                cid = self.control_id(m.group())
                if cid is None:
                    continue
                buf.append(p.text[pos : m.start()])
                if any(buf):
                    out.append("".join(buf))
                buf, pos = [], m.end()
                out.append(cid)
            buf.append(p.text[pos:])
        if any(buf):
            out.append("".join(buf))
        return out

    def tokens(self, pieces: Sequence[Piece]) -> list[int]:
        """All token ids of the prompt. BOS is the template's own literal (`<|begin_of_text|>`), never added."""
        ids: list[int] = []
        for run in self.runs(pieces):
            if isinstance(run, int):
                ids.append(run)
            else:
                ids += self.tok.tokenize(run.encode("utf-8", "replace"), False, False)
        return ids

    def continuation(self, pieces: Sequence[Piece], base: list[int], answer: str) -> list[int]:
        """The tokens of `answer` written right after the prompt, as one text with its last run.

        The answer shares the prompt's last plain run (Qwen3Guard's prompt ends with text, not a
        control token), so it is tokenized together with that run; if that changes the run's own
        tokens (never for the shipped formats), the answer is tokenized on its own. Only the
        last run is tokenized again, so many answers cost little.
        """
        last = self.runs(pieces)[-1:]
        alone = self.tok.tokenize(answer.encode("utf-8"), False, False)
        if not last or isinstance(last[0], int):
            return alone
        tail = self.tok.tokenize(last[0].encode("utf-8", "replace"), False, False)
        joint = self.tok.tokenize((last[0] + answer).encode("utf-8", "replace"), False, False)
        return joint[len(tail) :] if joint[: len(tail)] == tail and base[len(base) - len(tail) :] == tail else alone
