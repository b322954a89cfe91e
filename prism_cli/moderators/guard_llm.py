"""Guard-model moderator: a GGUF guard model (Llama Guard 3, Qwen3Guard, ShieldGemma) run by llama-cpp-python.

Probabilities, not parsed text: P(unsafe) comes from the answer's distribution normalised over
the verdicts ("safe" / "unsafe", Qwen3Guard's "Controversial"); per-category probabilities from
the answer that names the model's own category after the verdict, teacher-forced, normalised
over its categories and multiplied by P(verdict). The model's categories feed the policy ids of
its taxonomy map (models/registry.yaml); only those are claimed as scored (`categories`).
Multi-token answers are scored token by token over a trie of the answers, so any vocabulary works.

Cost: the prompt starts with the fixed policy text. Each role keeps its own llama.cpp context
(the prefix differs by role) and the list of tokens its KV cache holds; a new prompt evaluates
only the tokens after the longest common prefix. A response growing by a window therefore
costs the new tokens plus the short suffix and answer, not the whole response again.

llama_cpp is imported on first use only, so `prism check` with a classifier never loads it.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from pathlib import Path
from typing import Any, Sequence

from prism_cli.errors import ModeratorError
from prism_cli.moderators.base import Message, Role, runtime
from prism_cli.moderators.guard_formats import PROMPT_FORMATS, Plan, Query, get_format, unknown_format
from prism_cli.moderators.guard_tokens import PromptTokens
from prism_cli.policy import Policy
from prism_cli.verdict import OVERALL, REFUSED, Scores, controversial_key, overall_score

DEFAULT_N_CTX = 4096
_GGUF_MAGIC = b"GGUF"


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _softmax(logps: dict[str, float]) -> dict[str, float]:
    """Normalise log-probabilities over the options, stably; equal split if none is possible."""
    import math

    finite = [v for v in logps.values() if v != float("-inf")]
    if not finite:
        return {k: 1.0 / len(logps) for k in logps} if logps else {}
    m = max(finite)
    ex = {k: (math.exp(v - m) if v != float("-inf") else 0.0) for k, v in logps.items()}
    z = sum(ex.values())
    return {k: v / z for k, v in ex.items()}


class _Sequence:
    """One llama.cpp context and the tokens its KV cache holds; evaluates only what differs."""

    def __init__(self, ctx: Any, batch: Any, n_vocab: int, n_batch: int):
        self.ctx, self.batch, self.n_vocab, self.n_batch = ctx, batch, n_vocab, n_batch
        self.tokens: list[int] = []
        self.dists: dict[int, Any] = {}
        """k -> next-token log-probs after tokens[:k]: asking again for the same text gives the same
        answer at no cost (re-evaluating a token alone gives slightly different numbers)."""

    def forget(self) -> None:
        self.ctx.kv_cache_seq_rm(0, 0, -1)
        self.tokens, self.dists = [], {}

    def logprobs_after(self, tokens: Sequence[int], want: int = 1) -> tuple[list[Any], int]:
        """Next-token log-probabilities after each of the last `want` prefixes of `tokens`
        (the last one is after all of them), and how many tokens had to be evaluated.

        Only tokens past the longest common prefix with the cache are evaluated, plus the
        positions whose distributions are wanted and not remembered.
        """
        want = max(1, min(want, len(tokens)))
        lengths = range(len(tokens) - want + 1, len(tokens) + 1)
        common = _common_prefix(self.tokens, tokens)
        if common == len(tokens) and all(k in self.dists for k in lengths):
            return [self.dists[k] for k in lengths], 0
        n = min(common, len(tokens) - want)
        if n < len(self.tokens):
            if not self.ctx.kv_cache_seq_rm(0, n, -1):  # a cache that cannot drop a tail: start over
                self.ctx.kv_cache_seq_rm(0, 0, -1)
                n = 0
            del self.tokens[n:]
            self.dists = {k: v for k, v in self.dists.items() if k <= n}
        first_wanted = len(tokens) - want
        try:
            for i in range(n, len(tokens), self.n_batch):
                chunk = list(tokens[i : i + self.n_batch])
                self.batch.set_batch(chunk, n_past=i, logits_all=False)
                rows = [j for j in range(len(chunk)) if i + j >= first_wanted]
                for j in rows:
                    self.batch.batch.logits[j] = True
                self.ctx.decode(self.batch)
                self.tokens.extend(chunk)
                for j in rows:
                    self.dists[i + j + 1] = _log_softmax(self._logits(j))
        except Exception as e:  # noqa: BLE001 - the cache state is unknown now: forget it
            self.forget()
            raise ModeratorError(f"guard model evaluation failed ({e})") from None
        if len(self.dists) > 256:  # a bound, never reached in practice: truncation prunes it
            self.dists = {k: v for k, v in self.dists.items() if k >= len(tokens) - want}
        return [self.dists[k] for k in lengths], len(tokens) - n

    def _logits(self, row: int) -> Any:
        import numpy as np

        return np.ctypeslib.as_array(self.ctx.get_logits_ith(row), shape=(self.n_vocab,))


def _log_softmax(logits: Any) -> Any:
    """Numerically stable log-softmax (float64 accumulation, float32 result)."""
    import numpy as np

    x = logits.astype(np.float64)
    m = x.max()
    return (x - (m + np.log(np.exp(x - m).sum()))).astype(np.float32)


def taxonomy_for(fmt: str, registry_name: str | None = None) -> tuple[dict[str, tuple[str, ...]], bool, frozenset[str]]:
    """(model category -> policy ids, custom categories allowed, ids never asked) for a guard format.

    From the catalogue entry (by name, else the first with this prompt format); a Llama Guard
    with no entry scores what its codes name; ShieldGemma reads the policy's own categories.
    """
    if fmt == "shieldgemma":
        return {}, False, frozenset({REFUSED})
    from prism_cli.registry import guard_entry

    entry = guard_entry(registry_name, fmt)
    if entry is not None and entry.taxonomy is not None:
        return dict(entry.taxonomy), entry.custom_categories, frozenset({*entry.not_scored, REFUSED})
    codes = getattr(get_format(fmt), "codes", ())
    return {code: (code,) for code in codes}, False, frozenset({REFUSED})


class _LlamaTokenizer:
    """llama.cpp's tokenizer in the shape PromptTokens expects."""

    def __init__(self, llm: Any):
        self.llm = llm

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        return self.llm.tokenize(text, add_bos=add_bos, special=special)

    def is_control(self, token: int) -> bool:
        import llama_cpp

        attr = self.llm._model.token_get_attr(token)
        return bool(attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL) or token in (self.llm.token_bos(), self.llm.token_eos())


class GuardLLMModerator:
    """A guard LLM as a moderator. `tokens_evaluated` counts tokens sent through the model (KV reuse shows).

    `taxonomy` maps the model's own categories to policy ids; by default the catalogue entry
    (`registry_name`, else the first entry with the same prompt format) gives it, and a format
    with no entry scores what its own codes name (Llama Guard: a policy id that is its code).
    """

    def __init__(
        self,
        gguf_path: str | Path,
        policy: Policy,
        prompt_format: str | None = None,
        threads: int | None = None,
        n_ctx: int | None = None,
        n_batch: int = 512,
        registry_name: str | None = None,
        taxonomy: dict[str, Sequence[str]] | None = None,
        use_template: bool = True,
    ):
        self.path = Path(gguf_path)
        try:
            with open(self.path, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise ModeratorError(f"{self.path}: cannot read guard model ({e.strerror})") from None
        if magic != _GGUF_MAGIC:
            raise ModeratorError(f"{self.path}: not a GGUF file")
        from prism_cli.moderators.guard_template import detect_prompt_format

        if registry_name:  # an install of a catalogue guard follows the catalogue (older manifests named 1B's format llama-guard-3)
            from prism_cli.registry import load_catalogue

            entry = load_catalogue().get(registry_name)
            prompt_format = entry.prompt_format if entry is not None and entry.prompt_format else prompt_format
        if prompt_format is None:
            prompt_format, self.format_reason = detect_prompt_format(self.path)
        else:
            self.format_reason = "chosen"
        if prompt_format not in PROMPT_FORMATS:
            raise ModeratorError(f"{self.path}: {unknown_format(prompt_format)}")
        self.format_name = prompt_format
        self.format = get_format(prompt_format)
        self.policy = policy
        self.registry_name = registry_name
        self._set_taxonomy(taxonomy)
        self.name = f"{self.path.stem}@{prompt_format}"
        self.threads = threads or int(os.environ.get("PRISM_THREADS", "0") or 0) or None
        self.n_ctx = int(n_ctx or DEFAULT_N_CTX)
        self.n_batch = n_batch
        self.use_template = use_template
        self.tokens_evaluated = 0
        self.last_verdicts: list[dict[str, float]] = []
        """The normalised verdict distribution(s) of the last text scored, e.g. [{"safe": .7, "unsafe": .3}]."""
        self.template: str | None = None
        """The GGUF's own chat template, when it is this format's and prompts are rendered with it."""
        self._llm: Any = None
        self._owns_llm = True
        self._extra: list[Any] = []
        self._seqs: dict[str, _Sequence] = {}
        self._prompt: PromptTokens | None = None
        self._lock = threading.RLock()

    def _set_taxonomy(self, taxonomy: dict[str, Sequence[str]] | None) -> None:
        if taxonomy is None:
            self.taxonomy, self.custom, self.skip = taxonomy_for(self.format_name, self.registry_name)
        else:
            self.taxonomy, self.custom, self.skip = {k: tuple(v) for k, v in taxonomy.items()}, False, frozenset({REFUSED})
        self._plans: dict[str, Plan] = {}

    def plan(self, role: str) -> Plan:
        """The model's labels asked for a role's active categories, and the policy ids each feeds."""
        if role not in self._plans:
            self._plans[role] = self.format.plan(self.policy.active(role), self.taxonomy, self.custom, self.skip, role)
        return self._plans[role]

    # ------------------------------------------------------------------ loading

    @property
    def llm(self) -> Any:
        """The loaded llama_cpp.Llama (loads on first access)."""
        if self._llm is None:
            self._load()
        return self._llm

    def _load(self) -> None:
        from prism_cli.install_hint import install_command

        Llama = runtime("llama_cpp", f"guard models need llama-cpp-python: {install_command('llama')}").Llama
        log = io.StringIO()
        kwargs: dict[str, Any] = dict(n_ctx=self.n_ctx, n_batch=self.n_batch, logits_all=False, verbose=False)
        if self.threads:
            kwargs.update(n_threads=self.threads, n_threads_batch=self.threads)
        try:
            with contextlib.redirect_stderr(log):  # llama.cpp logs through Python's stderr: keep it quiet
                self._llm = Llama(str(self.path), **kwargs)
        except Exception as e:  # noqa: BLE001 - corrupt, truncated or unsupported files: one line
            lines = [ln.strip() for ln in log.getvalue().splitlines() if ln.strip()]
            why = next((ln for ln in reversed(lines) if "error" in ln.lower() or "fail" in ln.lower()), str(e))
            raise ModeratorError(f"{self.path}: cannot load guard model ({why.splitlines()[0][:200]})") from None
        self._adopt(self._llm)

    def _adopt(self, llm: Any) -> None:
        """Tokenizer and chat template of loaded weights."""
        from prism_cli.moderators.guard_template import template_format

        self._prompt = PromptTokens(_LlamaTokenizer(llm))
        tpl = (llm.metadata or {}).get("tokenizer.chat_template")
        self.template = tpl if self.use_template and template_format(tpl) == self.format_name and self.format_name != "shieldgemma" else None

    def _sequence(self, role: str) -> _Sequence:
        seq = self._seqs.get(role)
        if seq is not None:
            return seq
        llm = self.llm
        if not self._seqs and self._owns_llm:  # the first role uses the context Llama made
            seq = _Sequence(llm._ctx, llm._batch, llm.n_vocab(), self.n_batch)
        else:  # another role: a second context on the same weights (shares the mmapped model)
            from llama_cpp import _internals

            log = io.StringIO()
            with contextlib.redirect_stderr(log):
                ctx = _internals.LlamaContext(model=llm._model, params=llm.context_params, verbose=False)
                batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
            self._extra += [batch, ctx]
            seq = _Sequence(ctx, batch, llm.n_vocab(), self.n_batch)
        self._seqs[role] = seq
        return seq

    def with_format(self, prompt_format: str, policy: Policy | None = None, **options: Any) -> "GuardLLMModerator":
        """Another moderator on the same loaded weights (its own contexts): another format or policy."""
        other = GuardLLMModerator(
            self.path, policy or self.policy, prompt_format, self.threads, self.n_ctx, self.n_batch, **options,
        )
        other._llm, other._owns_llm = self.llm, False
        other._adopt(other._llm)
        return other

    def reset_cache(self) -> None:
        """Forget what the KV caches hold: the next check of each role is cold."""
        with self._lock:
            for seq in self._seqs.values():
                seq.forget()

    def close(self) -> None:
        """Free the contexts (and the model, if this moderator loaded it) now rather than at exit."""
        with self._lock:
            for obj in self._extra:
                obj.close()
            self._extra, self._seqs = [], {}
            if self._llm is not None and self._owns_llm:
                self._llm.close()
            self._llm = None

    # ------------------------------------------------------------------ tokens

    @property
    def prompt(self) -> PromptTokens:
        if self._prompt is None:
            self.llm
        assert self._prompt is not None
        return self._prompt

    @property
    def prompt_source(self) -> str:
        """Where the prompt text comes from: the GGUF's own chat template or prism's built-in format."""
        self.llm
        return "gguf chat template" if self.template else "built-in format"

    def queries(self, text: str, role: Role, context: Sequence[Message] | None = None) -> list[Query]:
        qs = self.format.queries(self.plan(role), text, role, context)
        if self.template is None:
            return qs
        from dataclasses import replace

        from prism_cli.moderators.guard_formats import _turns
        from prism_cli.moderators.guard_template import render_pieces

        return [replace(q, pieces=tuple(render_pieces(self.template, _turns(text, role, context), self._variables(role))))
                for q in qs]

    def _variables(self, role: str) -> dict[str, Any]:
        """What a guard template may read besides the messages: BOS/EOS text, Llama Guard's category table."""
        llm = self.llm
        out: dict[str, Any] = {
            "bos_token": llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace"),
            "eos_token": llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace"),
        }
        codes = getattr(self.format, "codes", None)
        if codes is not None:
            plan = self.plan(role)
            lines = dict(zip(plan.labels, plan.lines))
            out["categories"] = {code: line.split(": ", 1)[1] for code, line in lines.items()}
            out["excluded_category_keys"] = [c for c in codes if c not in plan.labels]
        return out

    def prompt_tokens(self, text: str, role: Role, context: Sequence[Message] | None = None) -> list[int]:
        """The tokens of the (first) query for a text, as the model sees them."""
        return self.prompt.tokens(self.queries(text, role, context)[0].pieces)

    def is_control(self, token: int) -> bool:
        """A control token (turn markers, BOS/EOS...): what a user must never be able to insert."""
        return _LlamaTokenizer(self.llm).is_control(token)

    # ------------------------------------------------------------------ scoring

    def categories(self, role: Role | None = None) -> set[str]:
        """The policy ids this guard really scores (for a role, or for either): its taxonomy's, never more."""
        roles = [role] if role else ["prompt", "response"]
        ids = {i for r in roles for ids in self.plan(r).labels.values() for i in ids}
        if "response" in roles and self.format_name == "qwen3guard" and REFUSED in {c.id for c in self.policy.active("response")}:
            ids.add(REFUSED)  # its refusal line, read for responses
        return ids

    def score(self, texts: Sequence[str], role: Role, context: Sequence[Message] | None = None) -> list[Scores]:
        with self._lock:
            return [self._score_one(t, role, context) for t in texts]

    def _score_one(self, text: str, role: Role, context: Sequence[Message] | None) -> Scores:
        seq = self._sequence(role)
        plan = self.plan(role)
        contro_mode = {c.id: c.controversial for c in self.policy.active(role)}
        scores: Scores = {}
        overall: float | None = None
        self.last_verdicts = []
        for q in self.queries(text, role, context):
            base = self.prompt.tokens(q.pieces)
            def cont(answer: str) -> list[int]:
                return self.prompt.continuation(q.pieces, base, answer)

            answers = {k: cont(v) for k, v in q.verdict.items()}
            per_verdict = {v: {m: cont(a) for m, a in labels.items()} for v, labels in q.categories.items()}
            longest = max((len(a) for a in [*answers.values(), *(a for d in per_verdict.values() for a in d.values())]), default=0)
            if len(base) + longest + 8 > self.n_ctx:
                raise ModeratorError(
                    f"{self.name}: text too long for the guard model's context "
                    f"({len(base) + longest} tokens > n_ctx {self.n_ctx})"
                )
            memo: dict[tuple[int, ...], Any] = {}
            p = _softmax(self._answer_logprobs(seq, base, answers, memo))
            self.last_verdicts.append(p)
            if q.target is not None:
                scores[q.target] = min(1.0, sum(p[k] for k in q.unsafe))
                continue
            unsafe_total = p.get("unsafe", 0.0)
            for v, labels in per_verdict.items():
                dist = _softmax(self._answer_logprobs(seq, base, labels, memo)) if labels else {}
                for m, pm in dist.items():
                    ids = plan.labels.get(m, ())
                    mode = {i: "block" if v == "unsafe" else contro_mode.get(i, "block") for i in ids}
                    for i in ids:
                        key = i if mode[i] == "block" else controversial_key(i) if mode[i] == "warn" else None
                        if key is not None:
                            scores[key] = scores.get(key, 0.0) + p[v] * pm
                    # "Controversial" counts in the overall score only where a category says block
                    if v != "unsafe" and ("block" in mode.values() or not ids):
                        unsafe_total += p[v] * pm
            overall = min(1.0, unsafe_total)
            if q.refusal:
                scores[REFUSED] = self._refusal(seq, base, q, p, per_verdict, memo, cont)
        for k in scores:
            scores[k] = min(1.0, scores[k])
        scores[OVERALL] = overall if overall is not None else overall_score(scores)
        return scores

    def _refusal(self, seq: _Sequence, base: list[int], q: Query, p: dict[str, float], per_verdict: dict[str, dict[str, list[int]]],
                 memo: dict[tuple[int, ...], Any], cont: Any) -> float:
        """P('Refusal: Yes') after the most likely verdict and category line, as greedy decoding would write them."""
        verdict = max(p, key=p.get)  # type: ignore[arg-type]
        line = q.verdict[verdict]
        labels = q.categories.get(verdict)
        if labels:
            dist = _softmax(self._answer_logprobs(seq, base, per_verdict[verdict], memo))
            line = labels[max(dist, key=dist.get)]  # type: ignore[arg-type]
        else:
            line += "\nCategories: None"
        r = _softmax(self._answer_logprobs(seq, base, {k: cont(line + v) for k, v in q.refusal.items()}, memo))
        return r["yes"]

    def _answer_logprobs(
        self, seq: _Sequence, base: list[int], answers: dict[str, list[int]], memo: dict[tuple[int, ...], Any]
    ) -> dict[str, float]:
        """log P(answer) for each answer token sequence after `base`, teacher-forced over a trie.

        An answer that is a strict prefix of another (Gemma spells "S1" and "S10" digit by digit)
        also needs the model to stop there: it gets log(1 - P(continuing into a longer answer)),
        so the answers form disjoint events and their probabilities sum to at most 1.
        """
        import math

        children: dict[tuple[int, ...], set[int]] = {}
        for toks in answers.values():
            for i in range(len(toks)):
                children.setdefault(tuple(toks[:i]), set()).add(toks[i])
        nodes = sorted(n for n in children if n not in memo)  # lexicographic = depth first
        i = 0
        while i < len(nodes):  # a chain of nodes each one token deeper costs one decode
            j = i
            while j + 1 < len(nodes) and len(nodes[j + 1]) == len(nodes[j]) + 1 and nodes[j + 1][:-1] == nodes[j]:
                j += 1
            lps, n_new = seq.logprobs_after(base + list(nodes[j]), want=j - i + 1)
            self.tokens_evaluated += n_new
            for node, lp in zip(nodes[i : j + 1], lps):
                memo[node] = lp
            i = j + 1
        out: dict[str, float] = {}
        for key, toks in answers.items():
            total = sum(float(memo[tuple(toks[:i])][toks[i]]) for i in range(len(toks)))
            longer = children.get(tuple(toks))
            if longer:
                go_on = sum(math.exp(float(memo[tuple(toks)][t])) for t in longer)
                total += math.log1p(-go_on) if go_on < 1.0 else float("-inf")
            out[key] = total
        return out
