"""Test-split figures of an exported prism-default 2.x folder: writes the held-out sets as JSONL for
`prism eval` (work/eval/) and returns numpy metrics per set. Figures on data the recipe never read
(hand-written probes, Eval-only sets) come from the separate evaluation harness in this folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

import recipe_data as rd
from recipe_config import WORK
from recipe_export import ort_predict
from recipe_metrics import average_precision, block_decision, eval_sets, rates


def report_test(folder: Path, test: list[rd.Row], log: Callable[[str], None] = print, work: Path = WORK) -> dict:
    (work / "eval").mkdir(parents=True, exist_ok=True)
    out: dict = {"sets": {}}
    for name, items in eval_sets(test).items():
        with open(work / "eval" / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps({"text": it["text"], "label": it["label"], "category": it["category"]}) + "\n")
        if not items:
            continue
        y = np.array([it["label"] for it in items])
        p = ort_predict(folder, [it["text"] for it in items])
        r = rates(y, block_decision(p))
        r["ap"] = average_precision(y, p[:, 0])
        out["sets"][name] = r
        log(f"test {name}: n={r['n']} recall {r['recall']:.3f} fpr {r['fpr']:.3f} precision {r['precision']:.3f} AP {r['ap']:.3f}")
    src = {}
    for r in test:
        if r.label == 0 and r.kind in ("lookalike", "benign", "response", "content"):
            src.setdefault(r.source.split("+")[0], []).append(r.text)
    fp = {}
    for s, texts in sorted(src.items()):
        if len(texts) >= 10:
            fp[s] = {"n": len(texts), "fpr": float(block_decision(ort_predict(folder, texts)).mean())}
    out["fpr_by_source"] = fp
    log("test FPR by benign source: " + ", ".join(f"{s} {v['fpr']:.3f} (n={v['n']})" for s, v in fp.items()))
    return out
