"""MODEL_CARD.md for the default moderator, with the figures it reports: `prism eval` on the
held-out sets (side by side with profanity-check) and bench/bench_classifier.py's speed."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from recipe_config import REPO, WORK


# ---------------------------------------------------------------- `prism eval`, speed, card
def run_prism_eval(model_dir: Path, files: list[Path]) -> dict:
    """The card's figures come from `prism eval` (default policy, role prompt), side by side with
    alt-profanity-check. Returns {set name: eval report} ({} when the command is unavailable)."""
    import subprocess

    out = {}
    for f in files:
        cmd = [sys.executable, "-m", "prism_cli", "eval", str(f), "-m", str(model_dir), "-m", "profanity-check", "--json"]
        env = {**os.environ, "PRISM_HOME": str(WORK / "prism-home"), "NO_COLOR": "1"}
        r = subprocess.run(cmd, capture_output=True, env=env, cwd=REPO, timeout=1800)
        if r.returncode != 0:
            print(f"prism eval {f.name} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-300:]}")
            return {}
        out[f.stem] = json.loads(r.stdout)
    return out


def run_bench(model_dir: Path) -> dict:
    sys.path.insert(0, str(REPO / "bench"))
    import bench_classifier as bc

    p50, p90, n_tok = bc.bench_single(model_dir, 300)
    tps = bc.bench_scan(model_dir, 4000, 2)
    cold, ort = bc.bench_cold(model_dir, 5)
    return {"p50_ms": p50, "p90_ms": p90, "max_tokens": n_tok, "scan_per_s": tps, "cold_s": cold, "ort_import_s": ort}


def _f(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


SET_NOTES = {
    "harmful_requests": "unsafe requests (all sources) vs benign requests (instructions, coconot benign, deepset benign, BIPIA tasks)",
    "clear_harmful_vs_lookalikes": "clearly harmful requests vs benign look-alikes (coconot contrast, CyberSecEval MITRE FRR, hand-written, held-out file)",
    "handwritten_lookalikes": "clearly harmful requests vs tests/data/benign_lookalikes.txt only (never trained on)",
    "toxic_content": "content, not requests: Davidson hate/offensive vs neither, ToxiGen hate vs neutral, RealToxicityPrompts, AdvBench strings",
    "jailbreak_injection": "jailbreaks and prompt injections vs benign documents and requests",
}


def write_card(path: Path, report: dict, pe: dict, bench: dict | None) -> None:
    L = ["# prism-default " + report["version"], "",
         "The moderator bundled with prism: a small text classifier that scores prompts (p(x)) and outputs (q(Y))",
         "offline on the CPU. It gives an overall P(unsafe) and per-category scores mapped onto the `default`",
         "policy's categories. Trained by `models/default/train.py` (this folder); figures below are written by it.", "",
         "## What it is", "",
         "- **Architecture**: all-MiniLM-L6-v2 (Apache-2.0) distilled into a static token table (each of the 30,522",
         "  WordPiece tokens encoded alone by MiniLM, PCA to 256 dims, stored fp16, frozen), then an ensemble of",
         f"  {report.get('members', 3)} text CNNs sharing that table (each: 2 conv layers, kernel 3, 256 channels, masked max pooling,",
         "  plus the masked mean of the token table, an MLP, 10 sigmoid heads); the output is the mean of their logits.",
         "  No attention: cost is linear in tokens and tiny.",
         f"- **File**: model.onnx {report['size_bytes'] / 1e6:.1f} MB, tokenizer.json (MiniLM's uncased WordPiece), "
         f"prism.json. Inputs input_ids / attention_mask int64, output `logits` [batch, 10]; max_length 256.",
         "- **Labels → policy**: unsafe (overall), violent→S1, crime→S2, cyber→S2+S14, weapons→S9, hate→S10, "
         "self_harm→S11, sexual→S12, jailbreak→jailbreak; toxic (insults, profanity, harassment)→harassment, a category",
         "  only the strict policy has: in the default policy it only feeds P(unsafe). Not covered: S3-S8, S13 (no training data).",
         "- **Calibration**: each head's operating point was chosen on the validation split and folded into the",
         "  output bias, so a policy threshold of 0.5 is that point; lower thresholds (strict) flag more.",
         "  Validation operating points (raw probability mapped to 0.5): "
         + ", ".join(f"{k} {v:.2f}" for k, v in report["val_operating_points"].items()) + ".", "",
         "## Data", "",
         "Only sets marked Train in `../shared/data/README.md`, read in place: " + ", ".join(report["sets_read"]) + ";",
         "plus hand-written look-alikes and a few self-harm / sexual / hate requests (`lookalikes_train.txt`,",
         "`unsafe_extra.txt`) and templated hard negatives (a harm topic asked about to understand, prevent, report",
         "or teach it; everyday senses of violent verbs). Texts are deduplicated across all sets on normalised text",
         "*before* a hash split (75/10/15): " + ", ".join(f"{k} {v}" for k, v in report["data"].items()) + ".",
         "Templated negatives and the training look-alikes are excluded from the test figures;",
         "`tests/data/benign_lookalikes.txt` (137 prompts) and `tests/data/harmful_probes.txt` are never trained on.", "",
         "## Quality on the held-out test split", ""]
    if pe:
        L += ["Measured with `prism eval FILE -m models/default -m profanity-check --json` (default policy, role prompt;",
              "flagged = warn or block) on the files the recipe writes to `models/default/work/eval/`.", "",
              "| set | n | unsafe | precision | recall | F1 | FPR | AP | AP profanity-check |",
              "|---|---|---|---|---|---|---|---|---|"]
        for name, rep in pe.items():
            ours, prof = rep["moderators"][0]["overall"], rep["moderators"][1]["overall"]
            L.append(f"| {name} | {ours['n']} | {ours['positives']} | {_f(ours['precision'])} | {_f(ours['recall'])} | "
                     f"{_f(ours['f1'])} | {_f(ours['fpr'])} | {_f(ours['ap'])} | {_f(prof['ap'])} |")
    else:
        L += ["Computed by the recipe (numpy), at the default thresholds:", "",
              "| set | n | unsafe | precision | recall | F1 | FPR | AP | AP profanity-check |",
              "|---|---|---|---|---|---|---|---|---|"]
        for name, r in report["sets"].items():
            if name.startswith("fpr:"):
                continue
            L.append(f"| {name} | {r['n']} | {r['pos']} | {_f(r['precision'])} | {_f(r['recall'])} | {_f(r['f1'])} | "
                     f"{_f(r['fpr'])} | {_f(r['ap_unsafe_head'])} | {_f(r['ap_profanity_check'])} |")
    L += ["", "Sets: " + "; ".join(f"**{k}**: {v}" for k, v in SET_NOTES.items()) + ".", "",
          f"- Recall on clearly harmful requests (AdvBench, HarmBench, StrongREJECT, TDC, refusal-direction, "
          f"CyberSecEval interpreter; n={report['recall_clear_harmful']['n']}): **{report['recall_clear_harmful']['recall']:.3f}** (target ≥ 0.90).",
          "- False-positive rate on benign look-alikes (target ≤ 0.10), by source:"]
    hp = report.get("recall_harmful_probes")
    if hp:
        L.insert(-1, f"- Recall on `tests/data/harmful_probes.txt` (hand-written harmful requests across the default "
                     f"policy's categories, never trained on; n={hp['n']}): **{hp['recall']:.3f}**.")
    for k, v in report["sets"].items():
        if k.startswith("fpr:"):
            L.append(f"  - {k[4:]}: **{v['fpr']:.3f}** (n={v['n']})")
    L += ["- Per category, share of the test split's unsafe rows of that category that the default policy blocks",
          "  (and the share its own head flags): " + "; ".join(
              f"{c} {v['blocked']:.2f} ({v['head_recall']:.2f}, n={v['n']})" for c, v in report["categories"].items()) + ".", ""]
    if bench:
        L += ["## Speed (this 2-core machine, `python bench/bench_classifier.py`)", "",
              f"- single prompt ≤ {bench['max_tokens']} tokens, one thread: p50 {bench['p50_ms']:.2f} ms, p90 {bench['p90_ms']:.2f} ms",
              f"- scan through `ClassifierModerator.score`, 2 threads: {bench['scan_per_s']:.0f} texts/s",
              f"- cold start `echo hi | prism check`: {bench['cold_s'] * 1000:.0f} ms vs `python -c 'import onnxruntime'` "
              f"{bench['ort_import_s'] * 1000:.0f} ms ({bench['cold_s'] / bench['ort_import_s']:.2f}x; target 2.5x)",
              "  The ratio moves with machine load. Of the gap, the CLI's own imports (typer, the command",
              "  modules) take about 35 ms; creating this model's session about 35 ms more than",
              "  an empty ONNX model (a 22.8 MB file; an int8 token table would halve it).", ""]
    if report.get("probes"):
        pr = report["probes"]
        L += ["## Spot checks (hand-written prompts, not from any training or test set)", "",
              f"Blocked {pr['harm_blocked']} of {pr['harm_n']} clearly harmful prompts and {pr['benign_blocked']} of "
              f"{pr['benign_n']} benign ones at the default policy. Missed (P(unsafe) after calibration):", ""]
        L += [f"- {t} ({p:.2f})" for t, p in pr["missed"]] + [""]
        if pr["false_blocks"]:
            L += ["Benign but blocked:", ""] + [f"- {t} ({p:.2f})" for t, p in pr["false_blocks"]] + [""]
    L += ["## Limits", "",
          "- English only (an uncased English WordPiece vocabulary); other languages are mostly unknown tokens.",
          "- A bag of local n-gram features, not a reader: it can be fooled by paraphrase, obfuscation, encodings, or",
          "  harmful intent spread across a long text; and it still over-flags some benign prompts that use harm words",
          "  (see the look-alike FPR). Long inputs are truncated to 256 tokens.",
          "- Trained on requests and short texts; scores for model *outputs* (q(Y)) are less tested.",
          "- The test split shares sources (and styles) with training; independent public benchmarks will read lower.",
          "  Use a guard model (`prism models pull`, cascade) where mistakes are costly.", "",
          "## Reproduce", "",
          "```", "pip install -e '.[train]'", "python models/default/train.py   # rewrites model.onnx, prism.json, tokenizer.json, this card",
          "for f in models/default/work/eval/*.jsonl; do prism eval $f -m models/default -m profanity-check; done",
          "python bench/bench_classifier.py", "```", "",
          f"Recipe wall time on this 2-core machine: {report['train_seconds'] / 60:.0f} min. Licence: Apache-2.0 "
          "(weights trained only on permissively licensed data; base model Apache-2.0).", ""]
    path.write_text("\n".join(L), encoding="utf-8")
