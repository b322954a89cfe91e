"""The `prism scan` runner: records in, batched to the gate, one output row per input, a tally.

Streams: at most one batch of texts is held at a time, so memory does not grow with
the input. Output rows keep input order; a malformed record either stops the scan
(InputError naming FILE:LINE) or, with skip_bad, becomes an error row in its place.
No typer or rich here: the command module renders progress and the summary.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from prism_cli.errors import InputError
from prism_cli.gate import Gate
from prism_cli.records import Record, Source
from prism_cli.verdict import Decision, Verdict, exit_code

Row = dict[str, Any]


@dataclass
class ScanOptions:
    role: str = "prompt"
    batch_size: int = 64
    field: str | None = None
    column: str | None = None
    skip_bad: bool = False
    include_text: bool = False
    only_flagged: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")


@dataclass
class Summary:
    texts: int = 0
    decisions: Counter = field(default_factory=Counter)
    """Texts per Decision (allowed, warned, blocked below)."""
    errors: int = 0
    """Texts the moderator could not score (their verdicts carry the error; fail closed)."""
    bad: int = 0
    """Malformed records recorded as error rows (skip_bad)."""
    written: int = 0
    calls: int = 0
    """Moderator calls (batches)."""
    flagged: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    bytes_read: int = 0
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.texts / self.seconds if self.seconds > 0 else 0.0

    @property
    def allowed(self) -> int:
        return self.decisions[Decision.ALLOW]

    @property
    def warned(self) -> int:
        return self.decisions[Decision.WARN]

    @property
    def blocked(self) -> int:
        return self.decisions[Decision.BLOCK]

    @property
    def exit_code(self) -> int:
        return exit_code(self.errors > 0, self.blocked > 0)

    def tally(self, v: Verdict) -> None:
        self.texts += 1
        if v.error is not None:
            self.errors += 1
            self.first_error = self.first_error or v.error
        self.decisions[v.decision] += 1
        self.flagged.update(v.flagged)


Progress = Callable[[Summary], None]


TARGET_SECONDS = 1.0
"""Aim for one moderator call (and one progress update) about every second."""


def next_batch_limit(limit: int, seconds: float, cap: int) -> int:
    """Grow the batch while calls are quick, shrink it when they are slow.

    Batches start at one text and double up to `cap` (--batch-size), so a fast classifier
    reaches full batches within a few calls while a guard LLM taking seconds per text
    stays near one text per call: the progress bar, rate and ETA keep moving either way.
    """
    if seconds < TARGET_SECONDS / 2:
        return min(cap, limit * 2)
    if seconds > TARGET_SECONDS * 2:
        return max(1, limit // 2)
    return min(cap, limit)


class _Batcher:
    """Collects records in input order and flushes them through the gate in batches of texts."""

    def __init__(self, gate: Gate, write: Callable[[Row], None], opts: ScanOptions, summary: Summary):
        self.gate, self.write, self.opts, self.summary = gate, write, opts, summary
        self.pending: list[Record] = []
        self.n_texts = 0
        self.limit = 1

    def add(self, rec: Record) -> bool:
        """Queue a record; True when a batch is ready (or many error rows wait: memory stays bounded)."""
        self.pending.append(rec)
        if rec.error is None:
            self.n_texts += 1
        return self.n_texts >= self.limit or len(self.pending) >= 4 * self.opts.batch_size

    def flush(self) -> None:
        if not self.pending:
            return
        good = [r for r in self.pending if r.error is None]
        t0 = time.perf_counter()
        verdicts = iter(
            self.gate.check_batch(
                [r.text or "" for r in good],
                self.opts.role,  # type: ignore[arg-type]
                [str(r.rid) if r.has_id else f"{r.file}:{r.line}" for r in good],
            )
        )
        if good:
            self.summary.calls += 1
            self.limit = next_batch_limit(self.limit, time.perf_counter() - t0, self.opts.batch_size)
        for rec in self.pending:
            if rec.error is not None:
                self.summary.bad += 1
                self._emit({**rec.where(), "error": rec.error})
                continue
            v = next(verdicts)
            self.summary.tally(v)
            if self.opts.only_flagged and v.decision is Decision.ALLOW and not v.flagged and v.error is None:
                continue
            row = {**v.to_dict(), **rec.where()}
            if rec.has_id:
                row["id"] = rec.rid
            if self.opts.include_text:
                row["text"] = rec.text
            self._emit(row)
        self.pending.clear()
        self.n_texts = 0

    def _emit(self, row: Row) -> None:
        self.write(row)
        self.summary.written += 1


def run_scan(
    sources: Sequence[Source],
    gate: Gate,
    write: Callable[[Row], None],
    opts: ScanOptions,
    progress: Progress | None = None,
    flush: Callable[[], None] | None = None,
) -> Summary:
    """Moderate every record of every source; returns the tally. Raises InputError on the first
    malformed record unless opts.skip_bad, and for an input that holds no texts at all."""
    summary = Summary()
    batch = _Batcher(gate, write, opts, summary)
    t0 = time.perf_counter()
    done = 0

    def step() -> None:
        batch.flush()
        if flush is not None:
            flush()
        summary.seconds = time.perf_counter() - t0
        if progress is not None:
            progress(summary)

    for src in sources:
        seen = 0
        for rec in src.records(opts.field, opts.column):
            seen += 1
            if rec.error is not None and not opts.skip_bad:
                raise rec.fail()
            if batch.add(rec):
                summary.bytes_read = done + src.pos
                step()
        if seen == 0:
            raise InputError(f"{src.name}: no texts")
        done += src.pos
        summary.bytes_read = done
    step()
    return summary
