"""Text classifier moderator: onnxruntime + tokenizers, rows scored in parallel. The bundled default uses it.

A model folder holds:
  model.onnx       inputs input_ids / attention_mask (/ token_type_ids), int64 [batch, seq];
                   one output [batch, n_labels] of logits or probabilities
  tokenizer.json   a `tokenizers` tokenizer
  prism.json       {"name", "version", "labels": [...], "activation": "sigmoid"|"softmax"|"none",
                    "max_length": 128, "output": optional output name,
                    "category_map": {label: policy category id or [ids]},
                    "unsafe": label giving P(unsafe) | {"one_minus": safe label} | null (max of categories),
                    "roles": ["prompt"] (optional: the roles it applies to; default both),
                    "windows": 64 (optional: cover long texts with overlapping max_length windows sharing
                               this many tokens, and take the maximum; default: truncate),
                    "threshold": 0.9 (optional: the score where the model's own runtime decides;
                               scores are shifted on the logit scale so that it reads 0.5),
                    "preoptimized": true (optional: model.onnx was saved already optimized by
                               onnxruntime, so loading skips the graph passes: ~25 ms of every cold start)}
onnxruntime and tokenizers are imported here only, on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from prism_cli.errors import ModeratorError
from prism_cli.moderators.base import Message, Role, runtime
from prism_cli.moderators.classifier_config import CONFIG, check_session, read_config  # noqa: F401 (re-exported)
from prism_cli.verdict import OVERALL, Scores, overall_score


_NEEDS = "the classifier backend needs onnxruntime and tokenizers"
MAX_WORKERS = 4
"""Default rows scored at once (threads), however many cores: a moderator shares the machine."""


class ClassifierModerator:
    def __init__(self, folder: str | Path, threads: int | None = None):
        self.folder = Path(folder)
        self.cfg = read_config(self.folder)
        self.name = f"{self.cfg.get('name', self.folder.name)}@{self.cfg.get('version', '0')}"
        self.labels: list[str] = self.cfg["labels"]
        self.activation: str = self.cfg.get("activation", "sigmoid")
        self.max_length = int(self.cfg.get("max_length", 128))
        self.roles = tuple(self.cfg.get("roles") or ("prompt", "response"))
        self.overlap = self.cfg.get("windows")
        self.shift = _logit(float(self.cfg["threshold"])) if self.cfg.get("threshold") is not None else 0.0
        threads = threads or int(os.environ.get("PRISM_THREADS", "0") or 0) or None
        self.workers = threads or min(os.cpu_count() or 1, MAX_WORKERS)
        """Rows scored at once, one CPU thread each."""
        self._pool: Any = None
        cmap = self.cfg.get("category_map", {})
        self._map: list[tuple[int, list[str]]] = []
        for i, label in enumerate(self.labels):
            target = cmap.get(label)
            if target:
                self._map.append((i, [target] if isinstance(target, str) else list(target)))
        unsafe = self.cfg.get("unsafe")
        self._unsafe_idx: int | None = None
        self._safe_idx: int | None = None
        if isinstance(unsafe, str):
            self._unsafe_idx = self._label_index(unsafe)
        elif isinstance(unsafe, dict) and "one_minus" in unsafe:
            self._safe_idx = self._label_index(unsafe["one_minus"])
        self._session: Any = None
        self._tokenizer: Any = None
        self.truncated = 0
        """Texts cut at max_length so far. The gate's windows keep it at 0: a test asserts it."""
        self.tokens_scored = 0
        """Tokens sent through the model so far (special tokens included): what a check costs."""

    def _label_index(self, label: str) -> int:
        if label not in self.labels:
            raise ModeratorError(f"{self.folder / CONFIG}: label {label!r} is not in 'labels'")
        return self.labels.index(label)

    def categories(self, role: Role | None = None) -> set[str]:
        if role is not None and role not in self.roles:
            return set()  # e.g. Prompt Guard on an assistant reply: it reads prompts only
        return {c for _, cats in self._map for c in cats}

    @property
    def max_tokens(self) -> int:
        """Tokens of text one input holds: max_length less the model's own special tokens."""
        return max(1, self.max_length - self._tok().num_special_tokens_to_add(False))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character offsets of the text's tokens, as the model's tokenizer cuts them."""
        enc = self._tok().encode(text, add_special_tokens=False)
        spans = enc.offsets
        for part in enc.overflowing:  # truncation is on for scoring: the rest comes as overflow
            spans.extend(part.offsets)
        return spans

    def _tok(self) -> Any:
        """The tokenizer alone (windows need it before, or without, the model)."""
        if self._tokenizer is None:
            tokenizers = runtime("tokenizers", _NEEDS)
            try:
                tok = tokenizers.Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            except Exception as e:  # noqa: BLE001 - a corrupt tokenizer file surfaces as one line
                raise ModeratorError(f"{self.folder}: cannot load tokenizer ({str(e).splitlines()[0][:200]})") from None
            if self.overlap is None:
                tok.enable_truncation(self.max_length)
            else:  # the model windows long inputs itself (Prompt Guard's own rule)
                tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def _load(self) -> None:
        ort = runtime("onnxruntime", _NEEDS)
        tok = self._tok()
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            # idle worker threads must not spin: in chat they would steal cores from token decoding
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.intra_op_num_threads = 1  # parallel across rows instead (_run): one thread per call
            opts.inter_op_num_threads = 1
            if self.cfg.get("preoptimized"):
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            sess = ort.InferenceSession(str(self.folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - corrupt/truncated model files surface as one line
            raise ModeratorError(f"{self.folder}: cannot load classifier ({str(e).splitlines()[0][:200]})") from None
        self._inputs = [i.name for i in sess.get_inputs()]
        self._output = check_session(sess, self.cfg, self.folder)
        self._session, self._tokenizer = sess, tok

    def score(self, texts: Sequence[str], role: Role, context: Sequence[Message] | None = None) -> list[Scores]:
        if role not in self.roles:
            return [{} for _ in texts]  # nothing scored (not "safe"): categories() says so for this role
        if self._session is None:
            self._load()
        import numpy as np

        encs = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        self.truncated += sum(1 for e in encs if e.overflowing)
        self.tokens_scored += sum(len(e.ids) for e in encs)
        rows = [(i, ids) for i, e in enumerate(encs) for ids in self._windows(e)]
        probs = self._run([ids for _, ids in rows])
        per_text = np.zeros((len(encs), len(self.labels)), dtype=np.float32)
        for (i, _), row in zip(rows, probs):
            per_text[i] = np.maximum(per_text[i], row)  # the riskiest window speaks for the text
        return [self._to_scores(row) for row in per_text]

    def _run(self, rows: list[list[int]]) -> Any:
        """Probabilities per row, one model call per row, rows spread over worker threads.

        Why not batches: dynamic int8 quantization takes its scale from the whole input tensor, so
        batched, a text's scores moved with its neighbours (up to 0.08 on long windows, 1.8 % of
        decisions on a 5,000-line scan), and `prism scan` disagreed with `prism check` on the same
        line. One row a call has no padding either; on 2 cores it scans as fast as length-grouped
        batches did (bench/bench_classifier.py prints both)."""
        import numpy as np

        def one(ids: list[int]) -> Any:
            a = np.zeros((1, max(1, len(ids))), dtype=np.int64)
            a[0, : len(ids)] = ids
            mask = np.zeros_like(a)
            mask[0, : len(ids)] = 1
            feed = {"input_ids": a, "attention_mask": mask, "token_type_ids": np.zeros_like(a)}
            return self._session.run([self._output], {k: feed[k] for k in self._inputs})[0][0]

        if len(rows) < 2 or self.workers < 2:
            outs = [one(r) for r in rows]
        else:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="prism-classifier")
            outs = list(self._pool.map(one, rows))
        probs = np.asarray(outs, dtype=np.float32).reshape(len(rows), len(self.labels))
        return self._activate(probs)

    def _windows(self, enc: Any) -> list[list[int]]:
        """The token rows a text is scored as: one (truncated), or overlapping windows covering all of it."""
        ids = list(enc.ids)
        if self.overlap is None or len(ids) <= self.max_length:
            return [ids]
        special = list(enc.special_tokens_mask)
        head = [t for t, m in zip(ids, special) if m][:1] if special and special[0] else []
        tail = [ids[-1]] if special and special[-1] else []
        body = ids[len(head) : len(ids) - len(tail)]
        width = self.max_length - len(head) - len(tail)
        step = max(1, width - int(self.overlap))
        starts = range(0, max(1, len(body) - int(self.overlap)), step)
        return [head + body[s : s + width] + tail for s in starts]

    def _activate(self, x: Any) -> Any:
        import numpy as np

        if self.activation == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without exp overflow
        if self.activation == "softmax":
            e = np.exp(x - x.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return np.clip(x, 0.0, 1.0)

    def _to_scores(self, row: Any) -> Scores:
        if self.shift:
            row = _shift(row, self.shift)
        s: Scores = {}
        for i, cats in self._map:
            for c in cats:
                s[c] = max(s.get(c, 0.0), float(row[i]))
        if self._unsafe_idx is not None:
            s[OVERALL] = float(row[self._unsafe_idx])
        elif self._safe_idx is not None:
            s[OVERALL] = 1.0 - float(row[self._safe_idx])
        else:
            s[OVERALL] = overall_score(s)
        return s


def _logit(p: float) -> float:
    import math

    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _shift(row: Any, shift: float) -> Any:
    """Move probabilities on the logit scale so that the model's own decision point reads 0.5."""
    import numpy as np

    x = np.clip(row.astype(np.float64), 1e-7, 1 - 1e-7)
    return (1.0 / (1.0 + np.exp(-(np.log(x / (1 - x)) - shift)))).astype(np.float32)
