"""A GGUF model in process (llama-cpp-python), with a token loop as lean as a bare Llama.generate.

Per turn the prompt is rendered and tokenized once; per token the loop does a cached
token->bytes lookup, an incremental UTF-8 decode and a stop-string check, nothing more
(no completion dicts, no per-token detokenize of the whole reply). llama.cpp keeps the KV
cache between turns and Llama.generate reuses the longest common prefix, so a follow-up
turn evaluates only its new tokens. llama_cpp is imported when an engine is built, never
when this module is imported.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from prism_cli.engines import chat_format as templates
from prism_cli.engines.base import ChatMessage, EngineError

DEFAULT_SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}


@contextlib.contextmanager
def _quiet_stderr(quiet: bool) -> Iterator[None]:
    """Silence llama.cpp's C-level log lines while loading (it bypasses Python's sys.stderr)."""
    if not quiet:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Utf8Pieces:
    """Token bytes -> text, holding back a multi-byte character split across tokens."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")

    def push(self, data: bytes) -> str:
        return self._dec.decode(data)

    def flush(self) -> str:
        """End of reply: an incomplete trailing sequence becomes U+FFFD."""
        return self._dec.decode(b"", True)


class StopScanner:
    """Cuts the reply at the first stop string; holds back text that may be one's beginning."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._prefixes = {s[:i] for s in self.stops for i in range(1, len(s))}
        self._longest = max((len(p) for p in self._prefixes), default=0)
        self._firsts = "".join(sorted({s[0] for s in self.stops}))
        self._held = ""

    def push(self, text: str) -> tuple[str, bool]:
        """(text safe to show, whether a stop string ended the reply)."""
        if not self._held and not any(c in text for c in self._firsts):
            return text, False  # the common case: no stop string can start in this piece
        buf = self._held + text
        cut = min((i for i in (buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return buf[:cut], True
        keep = 0
        for k in range(min(len(buf), self._longest), 0, -1):
            if buf[-k:] in self._prefixes:
                keep = k
                break
        self._held = buf[len(buf) - keep :]
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class LocalEngine:
    """Engine protocol over llama_cpp.Llama. Extra, optional attributes for the session:

    notice: a one-line remark for stderr (e.g. the fallback chat template), or None.
    template_hint: what to try when a reply comes out empty or looping.
    tokens_generated: tokens sampled over the engine's life (proves a closed stream stopped).
    last_stats: prompt_tokens, cached_tokens (KV prefix reused), generated_tokens and
    stop_reason (eos | stop | length | context | closed) of the latest stream.
    """

    def __init__(
        self,
        model_path: str | Path,
        n_ctx: int = 4096,
        threads: int | None = None,
        gpu_layers: int = 0,
        chat_format: str | None = None,
        seed: int | None = None,
        verbose: bool = False,
        **sampling: float,
    ) -> None:
        try:
            import llama_cpp
        except ImportError as e:
            from prism_cli.install_hint import install_command

            raise EngineError(f"running a GGUF in process needs llama-cpp-python: {install_command('llama')} ({e})") from None

        self._lib = llama_cpp
        path = Path(model_path)
        try:
            forced = None if chat_format in (None, templates.GGUF) else templates.get(chat_format)
        except ValueError as e:
            raise EngineError(str(e)) from None
        unknown = set(sampling) - set(DEFAULT_SAMPLING)
        if unknown:
            raise EngineError(f"unknown sampling option(s): {', '.join(sorted(unknown))}")
        self._sampling = {**DEFAULT_SAMPLING, **sampling}
        if not path.is_file():
            raise EngineError(f"{path}: no such model file")
        kw: dict[str, Any] = {"model_path": str(path), "n_ctx": n_ctx, "n_gpu_layers": gpu_layers, "verbose": verbose}
        if threads:
            kw.update(n_threads=threads, n_threads_batch=threads)
        if seed is not None:
            kw["seed"] = seed
        try:
            with _quiet_stderr(not verbose):
                self._llm = llama_cpp.Llama(**kw)
        except (ValueError, RuntimeError, OSError, AssertionError) as e:
            reason = (str(e).strip().splitlines() or ["unknown error"])[0]
            if "failed to load model" in reason.lower():  # llama.cpp's only word on it; its log is silenced
                reason = "truncated or damaged file, or an architecture this llama.cpp does not support"
            raise EngineError(f"{path}: cannot load GGUF model ({reason})") from None
        self._seed = self._llm._seed
        self._vocab = self._llm._model.vocab
        self.name = path.stem
        self.n_ctx = self._llm.n_ctx()
        self.notice: str | None = None
        self.tokens_generated = 0
        self.last_stats: dict[str, Any] = {}
        self._cache: dict[int, tuple[bytes, bool]] = {}
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._setup_template(forced, self._llm.metadata.get("tokenizer.chat_template"))

    # --- chat template -------------------------------------------------------------------

    def _setup_template(self, forced: templates.ChatTemplate | None, template_src: str | None) -> None:
        """The GGUF's Jinja template (`template_src`) unless a built-in is forced; else a guessed built-in."""
        self._jinja = None
        self.notice = None
        self.template_hint = "try another --chat-format, or an instruct GGUF with its own chat template"
        self._bos_text = self._token_text(self._llm.token_bos())
        eos_text = self._token_text(self._llm.token_eos())
        problem = "has no chat template"
        if forced is None and template_src:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            try:
                self._jinja = Jinja2ChatFormatter(template=template_src, eos_token=eos_text, bos_token=self._bos_text)
            except Exception as e:  # jinja2.TemplateError: a broken template must not stop the chat
                problem = f"has a chat template that does not compile ({str(e).splitlines()[0] if str(e) else e!r})"
            else:
                # The template has no stop list; a vocabulary's known turn tokens serve as one.
                guessed = templates.guess(self._is_control_token)
                turn_stops = guessed.stop if guessed.special_tokens else ()
                self.chat_format = templates.GGUF
                self._stops = tuple(s for s in (eos_text, *turn_stops) if s)
                return
        template = forced or templates.guess(self._is_control_token)
        if forced is None:
            base = " (probably a base model, not tuned to chat: expect rambling)" if not template_src else ""
            self.notice = (
                f"{self.name} {problem}{base}; using the '{template.name}' format (choose another with "
                "--chat-format; for real answers use an instruct GGUF, see 'Chat models' in the README)"
            )
            self.template_hint = (
                "this GGUF has no chat template and is probably a base model; use an instruct GGUF "
                "(e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M) or another --chat-format"
            )
        self._template, self.chat_format, self._stops = template, template.name, template.stop

    def _token_text(self, token: int) -> str:
        return self._llm._model.token_get_text(token) if token >= 0 else ""

    def _is_control_token(self, text: str) -> bool:
        toks = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return len(toks) == 1 and bool(self._lib.llama_vocab_is_control(self._vocab, toks[0]))

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text for these messages, ending where the assistant's reply starts."""
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        if self._jinja is None:
            return self._template.render(msgs)
        try:
            return self._jinja(messages=msgs).prompt
        except Exception as e:  # a template may raise_exception() on e.g. a system role
            raise EngineError(f"the model's chat template rejected the conversation: {e}") from None

    def tokenize_prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        prompt = self.render(messages)
        add_bos = self._add_bos and not (self._bos_text and prompt.startswith(self._bos_text))
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self.tokenize_prompt(messages))

    # --- decoding --------------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Render and check the prompt now (errors raise here), then return the token loop."""
        tokens = self.tokenize_prompt(messages)
        room = self.n_ctx - len(tokens)
        if room <= 0:
            raise EngineError(
                f"the conversation takes {len(tokens)} tokens but the context window is {self.n_ctx}; "
                "drop old turns or raise --ctx"
            )
        return self._loop(tokens, min(max_tokens, room), max_tokens, max(0.0, temperature), seed)

    def _loop(self, tokens: list[int], budget: int, max_tokens: int, temp: float, seed: int | None) -> Iterator[str]:
        llm = self._llm
        llm.set_seed(self._seed if seed is None else seed)
        stats = {"prompt_tokens": len(tokens), "cached_tokens": self._cached_prefix(tokens), "generated_tokens": 0}
        self.last_stats = stats
        text, stops, cache = Utf8Pieces(), StopScanner(self._stops), self._cache
        gen = llm.generate(tokens, temp=temp, **self._sampling)
        n, reason = 0, "closed"
        try:
            for tok in gen:
                entry = cache.get(tok)
                if entry is None:
                    entry = cache[tok] = (self._piece(tok), bool(self._lib.llama_vocab_is_eog(self._vocab, tok)))
                if entry[1]:
                    reason = "eos"
                    break
                n += 1
                self.tokens_generated += 1
                stats["generated_tokens"] = n
                piece = text.push(entry[0])
                if piece:
                    out, hit = stops.push(piece)
                    if out:
                        yield out
                    if hit:
                        reason = "stop"
                        break
                if n >= budget:
                    reason = "length" if budget == max_tokens else "context"
                    break
            else:
                reason = "eos"
            if reason != "stop":
                out, _ = stops.push(text.flush())
                tail = out + stops.flush()
                if tail:
                    yield tail
        except GeneratorExit:
            reason = "closed"
            raise
        except (RuntimeError, ValueError) as e:
            reason = "error"
            raise EngineError(f"llama.cpp failed while decoding: {e}") from None
        finally:
            gen.close()
            stats["stop_reason"] = reason

    def _cached_prefix(self, tokens: list[int]) -> int:
        """Prompt tokens whose KV entries survive from the previous turn (reported in last_stats)."""
        llm = self._llm
        n = 0
        for a, b in zip(llm.input_ids[: llm.n_tokens].tolist(), tokens):
            if a != b:
                break
            n += 1
        return n

    def _piece(self, token: int) -> bytes:
        """Token -> bytes. Control tokens keep their text (e.g. '<start_of_turn>') so the
        stop strings see a model that starts a new turn instead of an empty piece."""
        special = bool(self._lib.llama_vocab_is_control(self._vocab, token))
        size = 64
        buf = ctypes.create_string_buffer(size)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, size, 0, special)
        if n < 0:
            size = -n
            buf = ctypes.create_string_buffer(size)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, size, 0, special)
        return buf.raw[: max(n, 0)]

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None  # type: ignore[assignment]

